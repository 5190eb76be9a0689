"""Order-k Markov models of DNA: the baseline every genome language model must beat.

A model of order k predicts each base from the k bases before it, with add-alpha smoothing. Counts are kept
for every order 0..k, so a position with a shorter clean context (the start of a sequence, just after an N)
is predicted from the longest context it has; every A/C/G/T position is scored, as a language model scores
it. Positions whose base is not A/C/G/T are not scored. Everything is vectorised numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

_CODE = np.full(256, -1, dtype=np.int64)
for _i, _b in enumerate("ACGT"):
    _CODE[ord(_b)] = _i
    _CODE[ord(_b.lower())] = _i
MAX_ORDER = 12  # 4^13 counts of int64 = 0.5 GB; higher orders overfit any genome we could fit on a CPU anyway


def base_codes(seq: str) -> np.ndarray:
    """(L,) int64 codes: A=0 C=1 G=2 T=3 (either case), -1 for anything else."""
    return _CODE[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]


def _clean_context(codes: np.ndarray) -> np.ndarray:
    """(L,) number of consecutive A/C/G/T bases immediately before each position."""
    invalid = np.flatnonzero(codes < 0)
    positions = np.arange(codes.size)
    # index of the last invalid base strictly before t (or -1)
    last_bad = np.full(codes.size, -1, dtype=np.int64)
    if invalid.size:
        k = np.searchsorted(invalid, positions, side="left") - 1
        has = k >= 0
        last_bad[has] = invalid[k[has]]
    return positions - last_bad - 1


def _context_index(codes: np.ndarray, order: int) -> np.ndarray:
    """(L,) base-4 code of the `order` bases before each position and the base itself; garbage where unclean."""
    index = np.zeros(codes.size, dtype=np.int64)
    clipped = np.where(codes < 0, 0, codes)
    for lag in range(order, -1, -1):  # oldest base is the most significant digit
        shifted = np.zeros_like(clipped)
        if lag < codes.size:
            shifted[lag:] = clipped[: codes.size - lag]
        index = index * 4 + shifted
    return index


class MarkovModel:
    """Order-k Markov model with add-alpha smoothing and back-off to shorter clean contexts."""

    def __init__(self, order: int, alpha: float = 0.5):
        if not 0 <= order <= MAX_ORDER:
            raise ValueError(f"order must be in 0..{MAX_ORDER}, got {order}")
        self.order = order
        self.alpha = alpha
        self.counts = [np.zeros(4 ** (j + 1), dtype=np.int64) for j in range(order + 1)]  # [(4^(j+1),)]

    def fit(self, sequences: Iterable[str]) -> MarkovModel:
        for seq in sequences:
            codes = base_codes(seq)
            context = _clean_context(codes)
            scored = codes >= 0
            for j, counts in enumerate(self.counts):
                use = scored & (context >= j)
                counts += np.bincount(_context_index(codes, j)[use], minlength=counts.size)
        return self

    def log2_probs(self, seq: str) -> np.ndarray:
        """(L,) log2 P(base_t | clean context), NaN where the base is not A/C/G/T."""
        codes = base_codes(seq)
        order_used = np.minimum(_clean_context(codes), self.order)
        out = np.full(codes.size, np.nan)
        for j, counts in enumerate(self.counts):
            use = (codes >= 0) & (order_used == j)
            if not use.any():
                continue
            index = _context_index(codes, j)[use]
            table = counts.reshape(-1, 4) + self.alpha  # (4^j, 4)
            probs = table / table.sum(axis=1, keepdims=True)
            out[use] = np.log2(probs.reshape(-1)[index])
        return out

    def bits_per_base(self, sequences: Iterable[str]) -> float:
        """Mean negative log2 probability over every scored base of the sequences."""
        total, n = 0.0, 0
        for seq in sequences:
            lp = self.log2_probs(seq)
            lp = lp[~np.isnan(lp)]
            total -= float(lp.sum())
            n += lp.size
        if n == 0:
            raise ValueError("no A/C/G/T bases to score")
        return total / n


def select_markov_order(
    train: Sequence[str], valid: Sequence[str], orders: Iterable[int] = range(0, 11), alpha: float = 0.5
) -> tuple[MarkovModel, dict[int, float]]:
    """Fit one model per order on ``train``; return the best on ``valid`` and every order's bits/base."""
    scores: dict[int, float] = {}
    best: MarkovModel | None = None
    for order in orders:
        model = MarkovModel(order, alpha).fit(train)
        scores[order] = model.bits_per_base(valid)
        if best is None or scores[order] < scores[best.order]:
            best = model
    assert best is not None, "no orders given"
    return best, scores
