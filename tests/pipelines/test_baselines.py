"""Order-k Markov baseline: vectorised counts against a plain-Python count, and known entropies."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genolong.pipelines.baselines import MarkovModel, select_markov_order


def naive_log2_probs(train: list[str], seq: str, order: int, alpha: float) -> list[float]:
    """Per-position log2 P with back-off to the longest clean context, by dictionary counting."""
    counts = [Counter() for _ in range(order + 1)]
    for s in train:
        s = s.upper()
        for t, b in enumerate(s):
            if b not in "ACGT":
                continue
            run = 0
            while run < t and s[t - run - 1] in "ACGT":
                run += 1
            for j in range(min(order, run) + 1):
                counts[j][(s[t - j : t], b)] += 1
    out = []
    s = seq.upper()
    for t, b in enumerate(s):
        if b not in "ACGT":
            out.append(math.nan)
            continue
        run = 0
        while run < t and s[t - run - 1] in "ACGT":
            run += 1
        j = min(order, run)
        ctx = s[t - j : t]
        row = [counts[j][(ctx, x)] + alpha for x in "ACGT"]
        out.append(math.log2(row["ACGT".index(b)] / sum(row)))
    return out


dna = st.text(alphabet="ACGTNacgt", min_size=0, max_size=60)


@settings(max_examples=60, deadline=None)
@given(train=st.lists(dna, min_size=1, max_size=3), seq=dna, order=st.integers(0, 4))
def test_matches_naive_counting(train, seq, order):
    model = MarkovModel(order, alpha=0.5).fit(train)
    got = model.log2_probs(seq)
    want = np.array(naive_log2_probs(train, seq, order, 0.5))
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


def test_recovers_entropy_of_a_known_chain():
    # An order-1 chain where each base is followed by its successor (A->C->G->T->A) with p=0.7, else uniform
    # over the other three (0.1 each): entropy = -(0.7 log2 0.7 + 3 * 0.1 log2 0.1) bits per base.
    rng = random.Random(0)
    bases = "ACGT"
    seq = ["A"]
    for _ in range(200_000):
        nxt = bases[(bases.index(seq[-1]) + 1) % 4]
        seq.append(nxt if rng.random() < 0.7 else rng.choice([b for b in bases if b != nxt]))
    text = "".join(seq)
    entropy = -(0.7 * math.log2(0.7) + 3 * 0.1 * math.log2(0.1))
    best, scores = select_markov_order([text[:150_000]], [text[150_000:]], orders=range(0, 4))
    assert scores[0] == pytest.approx(2.0, abs=0.01)
    assert scores[1] == pytest.approx(entropy, abs=0.01)
    assert best.order >= 1 and scores[best.order] == pytest.approx(entropy, abs=0.01)


def test_bad_arguments():
    with pytest.raises(ValueError):
        MarkovModel(13)
    with pytest.raises(ValueError):
        MarkovModel(2).fit(["ACGT"]).bits_per_base(["NNNN"])
