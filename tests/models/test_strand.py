"""rc_mode="average": predictions are exactly strand-symmetric."""

from __future__ import annotations

import pytest
import torch

from genolong.models import GenoLongForMaskedLM, GenoLongForSequenceClassification, GenoLongForTrackPrediction
from tests.models.helpers import FAMILIES, random_dna, tiny_config

COMPLEMENT = torch.tensor([0, 1, 2, 3, 4, 8, 7, 6, 5, 9])


def revcomp(ids: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """Reverse complement of each row's first `lengths[b]` tokens; the right padding stays in place."""
    out = ids.clone()
    for b, n in enumerate(lengths):
        out[b, :n] = COMPLEMENT[ids[b, :n]].flip(0)
    return out


@pytest.mark.parametrize("family", ["hyena", "hybrid", "mlstm"])
def test_classification_scores_a_sequence_and_its_reverse_complement_identically(family):
    torch.manual_seed(0)
    ids = random_dna(3, 20)
    ids[2, 14:] = 0  # a right-padded row
    rc = revcomp(ids, [20, 20, 14])
    for fields in (
        dict(num_labels=3),
        dict(num_labels=1, pooling="last"),
        dict(num_labels=2, bidirectional=True),
    ):
        model = GenoLongForSequenceClassification(tiny_config(FAMILIES[family], rc_mode="average", **fields))
        with torch.no_grad():
            assert torch.equal(model.eval()(ids).logits, model(rc).logits)
        plain = GenoLongForSequenceClassification(tiny_config(FAMILIES[family], **fields)).eval()
        with torch.no_grad():
            assert not torch.allclose(plain(ids).logits, plain(rc).logits, atol=1e-5)  # not symmetric by luck


@pytest.mark.parametrize("family", ["hyena", "mamba2", "attention"])
def test_masked_lm_logits_map_onto_each_other_under_reverse_complement(family):
    torch.manual_seed(0)
    model = GenoLongForMaskedLM(tiny_config(FAMILIES[family], bidirectional=True, rc_mode="average")).eval()
    ids = random_dna(2, 18)
    ids[0, 7] = 4  # a [MASK]
    with torch.no_grad():
        fwd, rev = model(ids).logits, model(revcomp(ids, [18, 18])).logits  # (B, L, V)
    # Position p, base c on one strand is position L-1-p, base comp(c) on the other.
    assert torch.equal(fwd, rev.flip(1)[..., COMPLEMENT])


def test_track_predictions_are_strand_symmetric():
    torch.manual_seed(0)
    model = GenoLongForTrackPrediction(tiny_config("mamba2*2", rc_mode="average", num_tracks=2)).eval()
    ids = random_dna(2, 16)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, model(revcomp(ids, [16, 16])).logits.flip(1))
