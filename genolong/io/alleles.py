"""Variants as sequence changes: the :class:`Variant` value type, skipped alleles, and allele normalization
(trimming and left-alignment of indels against a reference), independent of any file format."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from genolong.errors import InconsistentDataError

PLAIN_BASES = re.compile(r"^[ACGTN]+$")  # an allele spelled in reference bases (uppercase)


@dataclass(frozen=True, slots=True)
class Variant:
    """One ALT allele: ``ref`` at 0-based ``pos`` of ``contig`` becomes ``alt`` (VCF-style, indels keep one
    anchor base). Equality is the genomic change only; the rest says where it came from."""

    contig: str
    pos: int
    ref: str
    alt: str
    id: str | None = field(default=None, compare=False)
    record: int = field(default=0, compare=False)  # 1-based record number in the file
    line: int | None = field(default=None, compare=False)  # 1-based line of a text VCF
    vcf_pos: int = field(default=0, compare=False)  # the record's POS, 1-based, as written
    vcf_ref: str = field(default="", compare=False)
    vcf_alt: str = field(default="", compare=False)
    allele: int = field(default=1, compare=False)  # 1-based index among the record's ALTs
    vcf_contig: str = field(default="", compare=False)  # CHROM as written (differs from contig with aliases)
    ref_mismatch: bool = field(default=False, compare=False)  # REF disagrees with the reference, kept on purpose

    @property
    def end(self) -> int:
        return self.pos + len(self.ref)

    @property
    def kind(self) -> str:
        """'SNV', 'MNV', 'insertion', 'deletion' or 'complex'."""
        ref, alt = self.ref, self.alt
        if len(ref) == len(alt):
            return "SNV" if len(ref) == 1 else "MNV"
        if len(ref) == 1 and (alt.startswith(ref) or alt.endswith(ref)):
            return "insertion"
        if len(alt) == 1 and (ref.startswith(alt) or ref.endswith(alt)):
            return "deletion"
        return "complex"

    def apply(self, seq: str, offset: int = 0) -> str:
        """``seq`` (which starts at 0-based ``offset`` of the contig) with this variant applied: its REF bases
        replaced by ALT. They must equal REF unless the variant was kept despite a mismatch (``ref_mismatch``)."""
        start = self.pos - offset
        found = seq[start : start + len(self.ref)] if start >= 0 else ""
        if len(found) != len(self.ref) or (found.upper() != self.ref and not self.ref_mismatch):
            raise InconsistentDataError(f"{self} expects {self.ref!r} but the sequence has {found!r}")
        return seq[:start] + self.alt + seq[start + len(self.ref) :]

    def __str__(self) -> str:
        return f"{self.contig}:{self.pos + 1}:{self.ref}>{self.alt}"


@dataclass(frozen=True, slots=True)
class SkippedAllele:
    """An ALT allele the reader did not yield, as written in the file, with the reason."""

    contig: str  # CHROM as written
    pos: int  # POS, 1-based, as written
    id: str | None
    ref: str
    alt: str  # "" when the record has no ALT
    record: int  # 1-based record number in the file
    allele: int  # 1-based index among the record's ALTs (1 when it has none)
    reason: str


Fetch = Callable[[int, int], str]  # (start, end) -> uppercase reference bases of one contig


def normalize(pos: int, ref: str, alt: str, fetch: Fetch | None = None) -> tuple[int, str, str]:
    """Trim (shared suffix, then prefix) and, with ``fetch(start, end)`` giving uppercase reference bases,
    left-align an indel. Returns VCF-style (pos, ref, alt): an indel keeps one anchor base on its left (on its
    right at the contig start). Without ``fetch`` alleles are only trimmed, down to one base each."""
    ref, alt = ref.upper(), alt.upper()
    if fetch is None:
        while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
            ref, alt = ref[:-1], alt[:-1]
        while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
            ref, alt, pos = ref[1:], alt[1:], pos + 1
        return pos, ref, alt
    n = min(len(ref), len(alt))
    suffix = next((i for i in range(n) if ref[-1 - i] != alt[-1 - i]), n)
    ref, alt = ref[: len(ref) - suffix], alt[: len(alt) - suffix]
    n = min(len(ref), len(alt))
    prefix = next((i for i in range(n) if ref[i] != alt[i]), n)
    ref, alt, pos = ref[prefix:], alt[prefix:], pos + prefix
    if ref and alt:
        return pos, ref, alt
    pos, moved = _shift_left(pos, ref or alt, fetch)
    ref, alt = (moved, "") if ref else ("", moved)
    if pos > 0:
        base = fetch(pos - 1, pos)
        return pos - 1, base + ref, base + alt
    base = fetch(len(ref), len(ref) + 1)  # at the contig start VCF anchors on the right
    return pos, ref + base, alt + base


def _shift_left(pos: int, s: str, fetch: Fetch, chunk: int = 64) -> tuple[int, str]:
    """Slide the inserted/deleted bases ``s`` at ``pos`` left while the base before equals the last one."""
    m, left, k = len(s), "", 0  # left == reference[pos - len(left), pos)
    while k < pos:
        i = len(left) - 1 - k  # index in (left + s) of the reference base at pos-1-k
        if i < 0:
            grow = min(max(chunk, len(left)), pos - len(left))
            left = fetch(pos - len(left) - grow, pos - len(left)) + left
            continue
        j = i + m
        if left[i] != (left[j] if j < len(left) else s[j - len(left)]):
            break
        k += 1
    return pos - k, (left[len(left) - k :] + s)[:m]


def reference_problem(pos: int, ref: str, contig_length: int | None) -> str | None:
    """Why REF at 0-based ``pos`` cannot be compared with its contig (``out_of_bounds``, ``invalid_bases``: a
    skip reason), or None if it can; ``contig_length`` None when unknown."""
    if pos < 0 or (contig_length is not None and pos + len(ref) > contig_length):
        return "out_of_bounds"
    return None if PLAIN_BASES.match(ref.upper()) else "invalid_bases"


def allele_problem(ref: str, alt: str) -> str | None:
    """Why an ALT allele cannot be scored as a sequence change (a skip reason), or None if it can."""
    if alt == ".":  # one missing allele in a list such as A,.
        return "missing_alt"
    if alt == "*":
        return "spanning_deletion"
    if alt.startswith("<"):
        return "symbolic"
    if "[" in alt or "]" in alt or (len(alt) > 1 and (alt[0] == "." or alt[-1] == ".")):
        return "breakend"
    if not PLAIN_BASES.match(alt):
        return "invalid_bases"
    return "alt_equals_ref" if alt == ref else None
