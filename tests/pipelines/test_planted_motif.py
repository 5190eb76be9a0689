"""A check that means something: a classifier fine-tuned to find a planted motif scores the variants that destroy
the motif far above variants elsewhere, by supervised delta and by in-silico mutagenesis."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from genolong.io.alleles import Variant
from genolong.models import GenoLongForSequenceClassification
from genolong.pipelines.variant_effect import VariantScorer
from genolong.tokenizers.alphabet import reverse_complement
from genolong.tokenizers.factory import build_tokenizer, model_config_fields
from tests.models.helpers import tiny_config

MOTIF = "TTGACAGT"  # not its own reverse complement
LENGTH = 64
MOTIF_AT = 200  # 0-based start of the motif in the test contig
TOKENIZER = build_tokenizer("nucleotide")


def random_dna(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("ACGT"), n))


def example(rng: np.random.Generator, positive: bool) -> str:
    """A random 64-mer; a positive one carries the motif on either strand at a random place."""
    while True:
        seq = random_dna(rng, LENGTH)
        if MOTIF in seq or MOTIF in reverse_complement(seq):
            continue
        if positive:
            at = int(rng.integers(0, LENGTH - len(MOTIF)))
            seq = seq[:at] + (MOTIF if rng.random() < 0.5 else reverse_complement(MOTIF)) + seq[at + len(MOTIF) :]
        return seq


@pytest.fixture(scope="module")
def classifier():
    """A tiny bidirectional Mamba2 classifier fine-tuned on motif vs no motif (about 10 s on one core)."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    config = tiny_config("mamba2*2", **model_config_fields(TOKENIZER), max_position=LENGTH, bidirectional=True,
                         num_labels=2, pooling="mean", initializer_range=0.02)  # fmt: skip
    model = GenoLongForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(250):
        labels = torch.as_tensor(rng.integers(0, 2, 32))
        ids = torch.as_tensor(np.stack([TOKENIZER.encode(example(rng, bool(y))) for y in labels]), dtype=torch.long)
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    labels = rng.integers(0, 2, 200)
    held_out = torch.as_tensor(np.stack([TOKENIZER.encode(example(rng, bool(y))) for y in labels]), dtype=torch.long)
    with torch.no_grad():
        accuracy = (model(input_ids=held_out).logits.argmax(-1).numpy() == labels).mean()
    assert accuracy > 0.95, f"the classifier did not learn the motif (held-out accuracy {accuracy:.2f})"
    return model


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """One 400-base random contig with the motif at MOTIF_AT."""
    rng = np.random.default_rng(7)
    while True:
        seq = random_dna(rng, 400)
        seq = seq[:MOTIF_AT] + MOTIF + seq[MOTIF_AT + len(MOTIF) :]
        if seq.count(MOTIF) == 1 and reverse_complement(MOTIF) not in seq:
            break
    path = tmp_path_factory.mktemp("genome") / "motif.fa"
    path.write_text(">synthetic\n" + seq + "\n")
    return path, seq


def snvs(seq: str, positions) -> list[Variant]:
    return [Variant("synthetic", p, seq[p], b) for p in positions for b in "ACGT" if b != seq[p]]


def test_supervised_delta_ranks_motif_destroying_variants_first(classifier, genome):
    path, seq = genome
    inside = snvs(seq, range(MOTIF_AT, MOTIF_AT + len(MOTIF)))  # 24 variants, each breaks the motif
    outside = snvs(seq, [*range(MOTIF_AT - 20, MOTIF_AT - 12), *range(MOTIF_AT + 20, MOTIF_AT + 28)])  # 48
    with VariantScorer(classifier, TOKENIZER, path, window=LENGTH - 1) as scorer:
        assert scorer.method == "supervised" and scorer.target == 1  # P(motif present)
        table = scorer.score(inside + outside, progress=False)
    assert (table["status"] == "scored").all()
    loss = -table["score"].to_numpy()  # how much P(motif) drops
    is_inside = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    assert roc_auc_score(is_inside, loss) > 0.85
    assert loss[: len(inside)].mean() > 0.3 and abs(loss[len(inside) :]).mean() < 0.1


def test_ism_puts_the_largest_effects_on_the_motif(classifier, genome, tmp_path):
    from genolong.pipelines.ism import plot_heatmap, saturation_mutagenesis

    path, _ = genome
    with VariantScorer(classifier, TOKENIZER, path, window=LENGTH - 1) as scorer:
        table = saturation_mutagenesis(scorer, f"synthetic:{MOTIF_AT - 15}-{MOTIF_AT + len(MOTIF) + 15}",
                                       progress=False)  # fmt: skip
    effect = table.assign(loss=-table["score"]).groupby("position")["loss"].mean()  # mean drop of P(motif)
    on_motif = effect.index.to_series().between(MOTIF_AT + 1, MOTIF_AT + len(MOTIF))  # 1-based positions
    assert effect[on_motif].mean() > 10 * abs(effect[~on_motif]).mean()
    assert set(effect.sort_values().index[-5:]) <= set(effect.index[on_motif])  # the 5 largest are on the motif
    plot_heatmap(table, tmp_path / "motif.png", title="planted motif", units="change of P(motif)")
    assert (tmp_path / "motif.png").stat().st_size > 5_000
