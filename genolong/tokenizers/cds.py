"""CDS segments and the codon frame they define inside a window (the codon tokenizer's annotation input).

A segment is 0-based, half-open, in window coordinates (it may run past either end of the window: the frame
still counts from the segment's own ends), with a strand and a GFF3 phase (bases to skip from the 5' end: from
``start`` on +, from ``end`` on -). Its codons start at ``start + phase + 3j`` (+) or end at
``end - phase - 3j`` (-); only codons whose three bases lie inside the window count. Where segments overlap,
they are taken in (start, end, strand) order and a codon is kept only if none of its bases is in a codon of an
earlier segment (uncontested codons are resolved in bulk; only codons in overlaps go through a Python loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genolong.tokenizers import vocab as V

PLUS, MINUS = 1, 2  # values of codon_start_kind


@dataclass(frozen=True)
class CdsSegment:
    """One CDS segment in window coordinates (0-based, half-open), its strand and GFF3 phase."""

    start: int
    end: int
    strand: str = "+"
    phase: int = 0

    def __post_init__(self) -> None:
        if self.strand not in ("+", "-"):
            raise V.TokenizerUsageError(f"CDS strand must be '+' or '-', not {self.strand!r} ({self})")
        if self.phase not in (0, 1, 2):
            raise V.TokenizerUsageError(f"CDS phase must be 0, 1 or 2, not {self.phase!r} ({self})")
        if not self.start < self.end:
            raise V.TokenizerUsageError(f"CDS segment is empty or reversed: {self}")


def as_segments(cds) -> list[CdsSegment]:
    """Flatten ``cds`` into segments: CdsSegment, ``(start, end[, strand[, phase]])`` tuples, objects with
    ``start``/``end``/``strand``/``phase`` attributes (strand may be 1/-1), or nested lists of these."""
    out: list[CdsSegment] = []

    def add(item) -> None:
        if isinstance(item, CdsSegment):
            out.append(item)
        elif isinstance(item, (tuple, list)) and item and isinstance(item[0], (int, np.integer)):
            start, end, *rest = item
            strand = _strand(rest[0] if rest else "+")
            out.append(CdsSegment(int(start), int(end), strand, int(rest[1]) if len(rest) > 1 else 0))
        elif hasattr(item, "start") and hasattr(item, "end"):
            phase = getattr(item, "phase", 0)
            if phase is None:
                raise V.TokenizerUsageError(f"CDS segment without a phase: {item!r}")
            strand = _strand(getattr(item, "strand", "+"))
            out.append(CdsSegment(int(item.start), int(item.end), strand, int(phase)))
        elif isinstance(item, (list, tuple)):
            for sub in item:
                add(sub)
        else:
            raise V.TokenizerUsageError(f"not a CDS segment: {item!r}")

    add(list(cds))
    return out


def _strand(value) -> str:
    return {1: "+", -1: "-"}.get(value, value) if isinstance(value, (int, np.integer)) else value


def codon_start_kind(segments: list[CdsSegment], length: int) -> np.ndarray:
    """(L,) int8: ``PLUS`` or ``MINUS`` where a kept codon starts (its lowest forward position), else 0."""
    kind = np.zeros(length, dtype=np.int8)
    if not segments or length < 3:
        return kind
    segs = sorted(segments, key=lambda g: (g.start, g.end, g.strand))
    start, end, phase = (
        np.array([getattr(g, f) for g in segs], dtype=np.int64) for f in ("start", "end", "phase")
    )
    minus = np.array([g.strand == "-" for g in segs])
    count = np.where(minus, end - phase - start, end - start - phase) // 3  # codons inside each segment
    count = np.maximum(count, 0)
    first = np.where(minus, end - phase - 3 * count, start + phase)  # lowest codon start of each segment
    seg_of = np.repeat(np.arange(len(segs)), count)  # (N,) segment rank of every codon
    within = np.arange(len(seg_of)) - np.repeat(np.cumsum(count) - count, count)  # (N,) index in segment
    at = np.repeat(first, count) + 3 * within  # (N,) codon starts, by segment rank then position
    inside = (at >= 0) & (at + 3 <= length)
    at, seg_of = at[inside], seg_of[inside]

    contested = _touches(at, _shared_intervals(start, end))  # codons in a stretch two segments share
    keep = ~contested
    claimed = np.zeros(length, dtype=bool)
    for i in np.flatnonzero(contested):  # in segment order: first come, first served
        p = at[i]
        if not claimed[p : p + 3].any():
            claimed[p : p + 3] = True
            keep[i] = True
    kind[at[keep]] = np.where(minus[seg_of[keep]], MINUS, PLUS)
    return kind


def _shared_intervals(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint sorted [lo, hi) stretches covered by two or more of the intervals (inputs sorted by start)."""
    reach = np.maximum.accumulate(end)  # furthest end among the intervals so far
    lo, hi = start[1:], np.minimum(end[1:], reach[:-1])  # each interval's overlap with those before it
    lo, hi = lo[lo < hi], hi[lo < hi]
    if lo.size > 1:  # merge: starts are sorted, so a stretch joins the previous one if it starts inside it
        new = np.concatenate([[True], lo[1:] > np.maximum.accumulate(hi)[:-1]])
        lo, hi = lo[new], np.maximum.reduceat(hi, np.flatnonzero(new))
    return lo, hi


def _touches(at: np.ndarray, shared: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(N,) bool: the codon [at, at+3) intersects one of the disjoint sorted stretches."""
    lo, hi = shared
    if not lo.size:
        return np.zeros(len(at), dtype=bool)
    i = np.searchsorted(hi, at, side="right")  # first stretch ending after the codon's start
    return (i < len(lo)) & (lo[np.minimum(i, len(lo) - 1)] < at + 3)
