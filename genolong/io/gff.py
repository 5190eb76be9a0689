"""GFF3 and GTF: features, and the CDS of each transcript joined 5'->3' (spliced and trans-spliced; see
:func:`cds_transcripts`), plus the file summary of ``genolong inspect``.

Columns 4-5 are 1-based inclusive and are converted on reading to 0-based half-open (``start - 1, end``). The
reader is a generator that validates every line and raises :class:`~genolong.errors.MalformedInputError`
naming the file and line.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from genolong.errors import MalformedInputError
from genolong.io.intervals import (
    INTEGER,
    Reference,
    numbered_lines,
    parse_score,
    per_contig_counts,
    placement_counts,
    reference_for,
)

_GTF_ATTR = re.compile(r'\s*([^\s;]+)\s+(?:"([^"]*)"|([^;\s]*))\s*(?:;|$)')

# -- GFF3 / GTF --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Feature:
    """One GFF3/GTF line, converted to 0-based half-open; ``attributes`` maps key -> text (multi-values joined
    with ',')."""

    contig: str
    source: str
    type: str
    start: int
    end: int
    score: float | None
    strand: str | None  # '+', '-' or None ('.' or '?')
    phase: int | None  # 0, 1, 2 or None ('.')
    attributes: dict[str, str]
    line: int


def read_gff(path: str | os.PathLike, feature: str | Collection[str] | None = "CDS") -> Iterator[Feature]:
    """Features of a GFF3 or GTF file (told apart by the attribute syntax), keeping ``feature`` types
    (None: all). Stops at a ``##FASTA`` section."""
    wanted = {feature} if isinstance(feature, str) else (None if feature is None else set(feature))
    gtf: bool | None = None
    for number, text in numbered_lines(path):
        if text.startswith("##FASTA"):
            return
        if not text.strip() or text.startswith("#"):
            continue
        cols = text.split("\t")
        if gtf is None and len(cols) == 9:
            gtf = re.match(r'\s*[^\s=;]+\s+"', cols[8]) is not None
        record = _parse_gff(cols, path, number, bool(gtf))
        if wanted is None or record.type in wanted:
            yield record


def gff_format(path: str | os.PathLike) -> str:
    """'GTF' or 'GFF3', from the attributes of the first feature line (GFF3 when there is none)."""
    for _, text in numbered_lines(path):
        cols = text.split("\t")
        if not text.startswith("#") and len(cols) == 9:
            return "GTF" if re.match(r'\s*[^\s=;]+\s+"', cols[8]) else "GFF3"
    return "GFF3"


def _parse_gff(cols: list[str], path: Any, line: int, gtf: bool) -> Feature:
    def bad(message: str) -> MalformedInputError:
        return MalformedInputError(message, path=path, line=line, hint="GFF3/GTF: 9 tab-separated columns")

    if len(cols) != 9:
        raise bad(f"expected 9 tab-separated columns, found {len(cols)}")
    contig, source, kind, start, end, score, strand, phase, attrs = cols
    if not (INTEGER.match(start) and INTEGER.match(end)) or int(start) < 1:
        raise bad(f"start and end must be 1-based positive integers, found {start!r} and {end!r}")
    if int(start) > int(end):
        raise bad(f"start {start} is after end {end}")
    if strand not in ("+", "-", ".", "?"):
        raise bad(f"strand must be '+', '-', '.' or '?', found {strand!r}")
    if phase not in ("0", "1", "2", "."):
        raise bad(f"phase must be 0, 1, 2 or '.', found {phase!r}")
    attributes = _gtf_attributes(attrs, bad) if gtf else _gff3_attributes(attrs, bad)
    return Feature(
        contig, source, kind, int(start) - 1, int(end), parse_score(score, bad),
        strand if strand in "+-" else None, None if phase == "." else int(phase), attributes, line,
    )  # fmt: skip


def _gff3_attributes(text: str, bad: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        if not eq:
            raise bad(f"GFF3 attribute {part!r} is not key=value")
        out[unquote(key.strip())] = ",".join(unquote(v) for v in value.split(","))
    return out


def _gtf_attributes(text: str, bad: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    text = text.strip()
    pos = 0
    while pos < len(text):
        match = _GTF_ATTR.match(text, pos)
        if match is None or match.end() == pos:
            raise bad(f'GTF attributes must be key "value"; pairs, found {text[pos:]!r}')
        key, value = match.group(1), match.group(2) if match.group(2) is not None else match.group(3)
        out[key] = f"{out[key]},{value}" if key in out else value
        pos = match.end()
    return out


# -- CDS transcripts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """One CDS piece, 0-based half-open, with its own strand and GFF phase."""

    contig: str
    start: int
    end: int
    strand: str | None
    phase: int | None


@dataclass(frozen=True, slots=True)
class Transcript:
    """The CDS segments of one transcript in 5'->3' order. ``contig``/``strand`` are those of the first (5')
    segment; a trans-spliced transcript may have segments elsewhere. Codons start ``phase`` bases in."""

    id: str
    gene: str | None
    contig: str
    strand: str | None
    segments: tuple[Segment, ...]
    trans_spliced: bool = False

    @property
    def length(self) -> int:
        return sum(s.end - s.start for s in self.segments)

    @property
    def spliced(self) -> bool:
        return len(self.segments) > 1

    @property
    def phase(self) -> int:
        return self.segments[0].phase or 0

    def phase_consistent(self) -> bool:
        """Whether every segment's phase (where given) follows from the first one and the segment lengths."""
        before = 0
        for seg in self.segments:
            if seg.phase is not None and seg.phase != (self.phase - before) % 3:
                return False
            before += seg.end - seg.start
        return True

    def sequence(self, reference: Reference) -> str:
        """The joined sequence, 5'->3', each segment reverse-complemented on the minus strand."""
        from genolong.tokenizers.alphabet import reverse_complement  # lazy: the tokenizers package is heavy

        parts = []
        for seg in self.segments:
            bases = reference.fetch(seg.contig, seg.start, seg.end).upper()
            parts.append(reverse_complement(bases) if seg.strand == "-" else bases)
        return "".join(parts)


def cds_transcripts(gff: str | os.PathLike | Iterable[Feature], feature: str = "CDS") -> list[Transcript]:
    """Spliced CDS per transcript, grouped by ``Parent`` (GFF3; ``ID`` when there is none) or
    ``transcript_id`` (GTF), in first-seen order.

    Segments on one contig and strand listed in coordinate order (either direction) are sorted 5'->3'.
    Otherwise (mixed strands or contigs, an order that is not monotone, or an ``exception=trans-splicing``
    attribute) the file order is kept as the transcript order and ``trans_spliced`` is set.
    """
    features = list(read_gff(gff, feature=None)) if isinstance(gff, (str, os.PathLike)) else list(gff)
    by_id = {f.attributes["ID"]: f for f in features if "ID" in f.attributes}
    groups: dict[str, list[Feature]] = defaultdict(list)
    for f in features:
        if f.type == feature:
            for key in _transcript_keys(f):
                groups[key].append(f)
    return [_transcript(key, parts, by_id) for key, parts in groups.items()]


def _transcript_keys(f: Feature) -> list[str]:
    a = f.attributes
    if "transcript_id" in a:
        return [a["transcript_id"]]
    if "Parent" in a:
        return a["Parent"].split(",")
    return [a.get("ID", f"{f.contig}:{f.start + 1}-{f.end}")]


def _transcript(key: str, parts: list[Feature], by_id: dict[str, Feature]) -> Transcript:
    segs = [Segment(f.contig, f.start, f.end, f.strand, f.phase) for f in parts]
    flagged = any("trans-splic" in f.attributes.get("exception", "") for f in parts)
    starts = [s.start for s in segs]
    monotone = starts in (sorted(starts), sorted(starts, reverse=True))
    simple = monotone and len({(s.contig, s.strand) for s in segs}) == 1
    if simple and not flagged:
        segs.sort(key=lambda s: s.start, reverse=segs[0].strand == "-")
    return Transcript(key, _gene_name(parts[0], by_id), segs[0].contig, segs[0].strand, tuple(segs),
                      trans_spliced=flagged or not simple)  # fmt: skip


def _gene_name(f: Feature | None, by_id: dict[str, Feature], depth: int = 0) -> str | None:
    if f is None or depth > 3:
        return None
    for key in ("gene", "gene_name", "gene_id") if depth == 0 else ("gene", "gene_name", "Name"):
        if key in f.attributes:
            return f.attributes[key]
    parent = f.attributes.get("Parent", "").split(",")[0]
    return _gene_name(by_id.get(parent), by_id, depth + 1)


def summarize_gff(path: str | os.PathLike, fasta: str | os.PathLike | None = None) -> dict[str, Any]:
    """Feature types, contigs, bases covered, CDS transcripts (spliced, trans-spliced, length and phase)."""
    features = list(read_gff(path, feature=None))
    transcripts = cds_transcripts(features)
    contigs = per_contig_counts(features, "features")
    with reference_for(fasta) as reference:
        placement = placement_counts(features, reference)
    return {
        "format": gff_format(path),
        "features": len(features),
        "feature_types": dict(Counter(f.type for f in features).most_common()),
        "bases_covered": sum(c["bases_covered"] for c in contigs.values()),
        "contigs": contigs,
        "cds_transcripts": len(transcripts),
        "spliced": sum(t.spliced for t in transcripts),
        "trans_spliced": sum(t.trans_spliced for t in transcripts),
        "cds_length_not_multiple_of_3": sum((t.length - t.phase) % 3 != 0 for t in transcripts),
        "phase_inconsistent": sum(not t.phase_consistent() for t in transcripts),
        # CDS lines without a frame: refused as a training annotation (data.annotation); transcripts read "." as 0
        "cds_without_strand": sum(f.type == "CDS" and f.strand is None for f in features),
        "cds_without_phase": sum(f.type == "CDS" and f.phase is None for f in features),
    } | placement
