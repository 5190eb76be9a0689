"""Soft-masked (lowercase) bases weighed in the training loss by policy: per token, on both strands, any tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genolong.data.datamodule import GenomeDataModule
from genolong.data.datasets import GenomeWindows
from genolong.errors import UsageError
from genolong.tokenizers.alphabet import reverse_complement
from genolong.tokenizers.factory import build_tokenizer


@pytest.fixture(scope="module")
def masked_fasta(tmp_path_factory):
    """One 3 kbp contig of random bases with lowercase (repeat-masked) runs of varied lengths."""
    rng = np.random.default_rng(5)
    bases = rng.choice(list("ACGT"), 3000)
    for start, n in zip(rng.integers(0, 2900, 25), rng.integers(1, 60, 25), strict=True):
        bases[start : start + n] = np.char.lower(bases[start : start + n])
    path = tmp_path_factory.mktemp("soft") / "masked.fa"
    seq = "".join(bases)
    path.write_text(">chrS\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n")
    return path, seq


def spans(tokenizer, ids):
    """(start, end) of the bases each token spells, from decoding tokens one by one (not from encoding)."""
    out, at = [], 0
    for i in ids:
        n = len(tokenizer.decode([int(i)]))
        out.append((at, at + n))
        at += n
    return out


@pytest.mark.parametrize("spec", ["nucleotide", "kmer:3", "kmer:4:2"])
def test_tokens_spelling_soft_masked_bases_carry_the_weight_on_both_strands(masked_fasta, spec):
    path, seq = masked_fasta
    tokenizer = build_tokenizer(spec)
    windows = GenomeWindows(path, tokenizer, 200, sampling="random", samples_per_epoch=30, reverse_complement=True,
                            soft_mask_weight=0.25, seed=1)  # fmt: skip
    seen = set()
    for index in range(len(windows)):
        item = windows[index]
        served = seq[item["start"] : item["end"]]
        served = reverse_complement(served) if item["minus_strand"] else served
        expected = [0.25 if any(c.islower() for c in served[a:b]) else 1.0
                    for a, b in spans(tokenizer, item["input_ids"])]  # fmt: skip
        assert item["loss_weight"].tolist() == expected
        seen |= set(expected)
        seen.add(("minus", item["minus_strand"]))
    assert {0.25, 1.0, ("minus", True), ("minus", False)} <= seen


def test_weight_one_serves_no_weights_and_bad_weights_are_refused(masked_fasta):
    path, _ = masked_fasta
    tokenizer = build_tokenizer("nucleotide")
    assert "loss_weight" not in GenomeWindows(path, tokenizer, 100, samples_per_epoch=2)[0]
    for bad in (-0.1, 1.5):
        with pytest.raises(UsageError, match="soft_mask_weight"):
            GenomeDataModule(str(path), soft_mask_weight=bad)


def test_training_batches_are_weighted_and_evaluation_batches_are_not(masked_fasta):
    path, _ = masked_fasta
    module = GenomeDataModule(str(path), train_regions=["chrS:1-2000"], val_regions=["chrS:2001-3000"],
                              stages=[(200, 0)], tokens_per_step=800, soft_mask_weight=0.0)  # fmt: skip
    train = next(iter(module.train_dataloader()))
    assert train["loss_weight"].shape == train["input_ids"].shape
    assert set(train["loss_weight"].unique().tolist()) == {0.0, 1.0}
    assert (train["loss_weight"][~train["attention_mask"]] == 0).all()  # padding weighs nothing
    assert "loss_weight" not in next(iter(module.val_dataloader()))


@pytest.mark.parametrize("objective", ["causal", "masked"])
def test_the_loss_counts_each_position_by_its_weight(objective):
    from genolong.training.lm import LanguageModelModule

    torch.manual_seed(0)
    module = LanguageModelModule(preset="tiny-hyena", objective=objective, mask_probability=0.5).eval()
    ids = torch.randint(5, 9, (3, 40))  # A/C/G/T ids
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids, dtype=torch.bool)}
    weights = torch.rand(3, 40)
    nats, count, bases = module.lm_loss(batch | {"loss_weight": weights}, draw=3)
    if objective == "causal":
        logits = module(ids)[:, :-1]
        per_position = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        assert torch.allclose(nats, (per_position * weights[:, 1:]).sum(), rtol=1e-5)
        assert torch.allclose(count, weights[:, 1:].sum()) and torch.allclose(bases, count)
    unweighted = module.lm_loss(batch, draw=3)
    ones = module.lm_loss(batch | {"loss_weight": torch.ones(3, 40)}, draw=3)
    assert all(torch.allclose(a.float(), b.float()) for a, b in zip(unweighted, ones, strict=True))
    zero = module.lm_loss(batch | {"loss_weight": torch.zeros(3, 40)}, draw=3)
    assert all(float(x.detach()) == 0 for x in zero)
