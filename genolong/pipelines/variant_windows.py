"""The sequence windows a variant is scored on: a ref and an alt window per strand.

``W`` = the window length in bases. Two layouts (``mode``):

``centered`` (default; every method)
    The ref window has the same number of flanking bases on each side of the REF allele:
    ``flank = (W - max(len(ref), len(alt))) // 2``, spanning ``[pos - flank, end + flank)``, so the longer of the
    ref and alt windows has at most ``W`` bases (for an insertion the ref window is shorter by its length). The
    alt window is the ref window with the variant applied: both share the left flank ``[start, pos)`` and, for
    indels too, cover the same reference bases after the variant. A window that would run past a contig end is
    **shifted** (same length) to stay inside the contig; a contig shorter than the window is taken whole. The
    reverse strand scores the reverse complements of the same two windows.
``upstream`` (causal log-likelihood ratio only)
    The window ends with the allele: ``W - max(len(ref), len(alt))`` bases of context before it, then REF or ALT,
    nothing after. Near the contig start the context is **truncated**, not shifted (there is nothing to shift
    to). On the reverse strand the "upstream" context is the forward strand's downstream: the windows are the
    reverse complements of ``allele + the W - longest bases after it``.

Both layouts put the variant at a fixed offset from identical flanks, and :func:`genolong.io.variants.read_variants`
left-aligns indels, so equivalent representations of one indel get the same windows and the same score.
A variant whose REF or ALT is longer than ``W // 2`` does not fit and gets no windows.

Codon models read their windows in the frames of a CDS annotation (:func:`with_cds`): each window carries the
CDS segments overlapping it, in its own coordinates (the reverse strand's mirrored). The alt window's segments
are the ref window's with the variant applied to their ends: a segment after the variant moves by the indel's
length, one holding it grows or shrinks by it (so a frameshift reads the rest of that segment in the new frame),
bases inserted at a segment's edge stay outside it, and a segment deleted whole is gone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from genolong.data.annotation import CdsAnnotation, flip
from genolong.errors import UsageError
from genolong.io.alleles import Variant
from genolong.tokenizers.alphabet import reverse_complement
from genolong.tokenizers.cds import CdsSegment

WINDOW_MODES = ("centered", "upstream")


@dataclass(frozen=True)
class StrandPair:
    """The ref and alt sequences of one strand; their first ``shared`` bases are identical."""

    ref: str
    alt: str
    shared: int
    site: int  # offset of the allele in both sequences (its first base)
    ref_cds: tuple[CdsSegment, ...] = ()  # codon models: the CDS segments in each window's coordinates
    alt_cds: tuple[CdsSegment, ...] = ()


@dataclass(frozen=True)
class VariantWindows:
    start: int  # 0-based first reference base of the forward windows
    end: int  # 0-based end (exclusive) of the reference bases the forward ref window spans
    forward: StrandPair
    reverse: StrandPair
    reverse_start: int  # 0-based first reference base (forward coordinates) of the reverse windows


def variant_windows(variant: Variant, fasta: Any, window: int, mode: str = "centered") -> VariantWindows | None:
    """The windows of ``variant`` (see the module docstring); None when the variant does not fit."""
    if mode not in WINDOW_MODES:
        raise UsageError(f"window mode must be one of {WINDOW_MODES}, got {mode!r}")
    longest = max(len(variant.ref), len(variant.alt))
    if longest > window // 2:
        return None
    if mode == "centered":
        return _centered(variant, fasta, window, longest)
    return _upstream(variant, fasta, window, longest)


def _centered(variant: Variant, fasta: Any, window: int, longest: int) -> VariantWindows:
    flank = (window - longest) // 2
    contig_length = fasta.lengths[variant.contig]
    length = min(len(variant.ref) + 2 * flank, contig_length)
    start = min(max(variant.pos - flank, 0), contig_length - length)
    ref = fasta.fetch(variant.contig, start, start + length).upper()
    alt = variant.apply(ref, offset=start)
    left = variant.pos - start
    right = length - left - len(variant.ref)
    forward = StrandPair(ref, alt, left, left)
    reverse = StrandPair(reverse_complement(ref), reverse_complement(alt), right, right)
    return VariantWindows(start, start + length, forward, reverse, start)


def _upstream(variant: Variant, fasta: Any, window: int, longest: int) -> VariantWindows:
    context = window - longest
    contig_length = fasta.lengths[variant.contig]
    start = max(variant.pos - context, 0)
    before = fasta.fetch(variant.contig, start, variant.pos).upper()
    forward = StrandPair(before + variant.ref, before + variant.alt, len(before), len(before))
    after = fasta.fetch(variant.contig, variant.end, min(variant.end + context, contig_length)).upper()
    ref_rc, alt_rc = reverse_complement(variant.ref + after), reverse_complement(variant.alt + after)
    reverse = StrandPair(ref_rc, alt_rc, len(after), len(after))
    return VariantWindows(start, variant.end, forward, reverse, variant.pos)


def with_cds(windows: VariantWindows, variant: Variant, frames: CdsAnnotation) -> VariantWindows:
    """``windows`` with the CDS segments of ``frames`` overlapping them (see the module docstring)."""
    ref_f, alt_f = _cds_pair(windows.forward, windows.start, variant, frames)
    ref_r, alt_r = _cds_pair(windows.reverse, windows.reverse_start, variant, frames)
    reverse = replace(windows.reverse, ref_cds=tuple(flip(ref_r, len(windows.reverse.ref))),
                      alt_cds=tuple(flip(alt_r, len(windows.reverse.alt))))  # fmt: skip
    return replace(windows, forward=replace(windows.forward, ref_cds=tuple(ref_f), alt_cds=tuple(alt_f)),
                   reverse=reverse)  # fmt: skip


def _cds_pair(pair: StrandPair, start: int, variant: Variant, frames: CdsAnnotation) -> tuple[list, list]:
    """The CDS segments of the reference bases [start, start + len(pair.ref)) in forward-strand window
    coordinates: as annotated (ref window) and with the variant applied to their ends (alt window)."""
    ref = frames.segments(variant.contig, start, start + len(pair.ref))
    # the bases that change: ref [lo, ref_hi) becomes alt [lo, alt_hi) (the alleles' shared ends left out)
    prefix = len(os.path.commonprefix([variant.ref, variant.alt]))
    suffix = len(os.path.commonprefix([variant.ref[prefix:][::-1], variant.alt[prefix:][::-1]]))
    lo = variant.pos - start + prefix
    ref_hi, alt_hi = lo + len(variant.ref) - prefix - suffix, lo + len(variant.alt) - prefix - suffix

    def moved(x: int, is_end: bool) -> int:  # a segment boundary in the ref window -> in the alt window
        if x < lo or (x == lo and is_end):  # before the change (bases inserted at a segment's end are outside it)
            return x
        if x >= ref_hi:  # after it (bases inserted before a segment's start are outside it too)
            return x + alt_hi - ref_hi
        return lo + min(x - lo, alt_hi - lo)  # inside the replaced bases

    ends = [(moved(s.start, False), moved(s.end, True), s) for s in ref]
    return ref, [CdsSegment(begin, end, s.strand, s.phase) for begin, end, s in ends if begin < end]
