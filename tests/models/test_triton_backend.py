"""Whole models on the Triton kernels (backend="triton") against the same models on the torch paths: loss and
every parameter's gradient. Without CUDA the kernels run under the Triton interpreter (tests/conftest.py)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from genolong.models import GenoLongForCausalLM, GenoLongForMaskedLM  # noqa: E402
from tests.models.helpers import FAMILIES, random_dna, tiny_config  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def loss_and_grads(model_class, mixers: str, backend: str, ids: torch.Tensor):
    torch.manual_seed(0)
    bidirectional = model_class is GenoLongForMaskedLM
    model = model_class(tiny_config(mixers, backend=backend, bidirectional=bidirectional)).to(DEVICE).train()
    ids = ids.to(DEVICE)
    loss = model(ids, labels=ids).loss
    loss.backward()
    return loss.item(), {n: p.grad.cpu() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family", ["hyena", "mamba2", "hybrid", "mlstm"])
@pytest.mark.parametrize("model_class", [GenoLongForCausalLM, GenoLongForMaskedLM])
def test_triton_backend_trains_like_the_torch_paths(family, model_class):
    # the masked LM runs each mixer forward and backward (weight-tied reverse pass)
    ids = random_dna(2, 24, seed=3)
    loss_t, grads_t = loss_and_grads(model_class, FAMILIES[family], "triton", ids)
    loss_r, grads_r = loss_and_grads(model_class, FAMILIES[family], "torch", ids)
    assert abs(loss_t - loss_r) < 1e-4
    assert grads_t.keys() == grads_r.keys()
    for name, g in grads_r.items():
        assert torch.allclose(grads_t[name], g, atol=1e-4, rtol=1e-3), name
