"""A tiny model of each family memorises one batch: the whole stack trains."""

from __future__ import annotations

import pytest
import torch

from genolong.models import GenoLongForCausalLM, GenoLongForMaskedLM
from tests.models.helpers import FAMILIES, random_dna, tiny_config


@pytest.mark.parametrize("family", ["hyena", "mamba2", "hybrid", "mlstm"])
def test_causal_lm_overfits_one_batch(family):
    torch.manual_seed(0)
    model = GenoLongForCausalLM(tiny_config(FAMILIES[family], initializer_range=0.02))
    ids = random_dna(2, 32, seed=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(100):
        loss = model(ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])


def test_bidirectional_masked_lm_learns_to_fill_in():
    torch.manual_seed(0)
    model = GenoLongForMaskedLM(tiny_config("mamba2*2", bidirectional=True, initializer_range=0.02))
    ids = random_dna(2, 32, seed=4)
    masked = ids.clone()
    masked[:, ::4] = 4  # every 4th base is [MASK]
    labels = torch.full_like(ids, -100)
    labels[:, ::4] = ids[:, ::4]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    first = None
    for _ in range(80):
        loss = model(masked, labels=labels).loss
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first
