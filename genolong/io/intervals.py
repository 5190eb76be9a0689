"""Intervals and annotations: BED, GFF3/GTF features and spliced CDS transcripts, 0-based half-open.

BED is already 0-based half-open; GFF3/GTF columns 4-5 are 1-based inclusive and are converted on reading
(``start - 1, end``). Readers are generators that validate every line and raise
:class:`~genolong.errors.MalformedInputError` naming the file and line. :func:`cds_transcripts` joins the CDS
segments of each transcript 5'->3' (see its docstring for trans-splicing). Also home of the small helpers the
other readers share: :func:`open_text` and :func:`open_reference`.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol
from urllib.parse import unquote

from genolong.errors import InputMissingError, MalformedInputError

_INT = re.compile(r"^\d+$")
_HEADER = re.compile(r"^(track|browser)(\s|$)")
_GTF_ATTR = re.compile(r'\s*([^\s;]+)\s+(?:"([^"]*)"|([^;\s]*))\s*(?:;|$)')


class Reference(Protocol):
    """What the readers need from a reference: ``fetch(contig, start, end) -> str`` and ``lengths``."""

    lengths: Mapping[str, int]

    def fetch(self, contig: str, start: int, end: int) -> str: ...


class _PysamReference:
    """Adapter giving a ``pysam.FastaFile`` a ``lengths`` dict."""

    def __init__(self, handle: Any):
        self.handle, self.lengths = handle, dict(zip(handle.references, handle.lengths, strict=True))

    def fetch(self, contig: str, start: int, end: int) -> str:
        return self.handle.fetch(contig, start, end)


def open_reference(fasta: str | os.PathLike | Reference | None) -> Reference | None:
    """A :class:`~genolong.io.fasta.Fasta` for a path; objects with ``fetch``/``lengths`` are used as they are
    (a ``pysam.FastaFile`` gets a ``lengths`` dict)."""
    if fasta is None or (hasattr(fasta, "fetch") and isinstance(getattr(fasta, "lengths", None), Mapping)):
        return fasta
    if hasattr(fasta, "fetch"):
        return _PysamReference(fasta)
    from genolong.io.fasta import Fasta

    return Fasta(fasta)


def _open_binary(path: str | os.PathLike) -> IO[bytes]:
    try:
        with open(path, "rb") as probe:
            gz = probe.read(2) == b"\x1f\x8b"
        return gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as error:
        raise InputMissingError(f"cannot read: {error.strerror or error}", path=path) from None


def open_text(path: str | os.PathLike) -> IO[str]:
    """A text file, gzip/bgzip-compressed or not (bad bytes replaced); InputMissingError if unreadable."""
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8", errors="replace")


def _lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its newline); bytes that are not UTF-8 raise MalformedInputError."""
    handle = _open_binary(path)
    with handle:
        number = 0
        try:
            for number, raw in enumerate(handle, 1):  # noqa: B007 - number is used after an error
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise MalformedInputError(f"not a text file ({error})", path=path, line=number) from None
                yield number, text.rstrip("\r\n")
        except (EOFError, OSError, zlib.error) as error:
            raise MalformedInputError(f"cannot decompress ({error})", path=path, line=number + 1) from None


def merged_length(spans: Iterable[tuple[int, int]]) -> int:
    """Bases covered by the union of 0-based half-open spans."""
    total, reach = 0, -1
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


# -- BED ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    """One BED line: ``contig[start, end)`` with the optional columns (``'.'`` in the file reads as None)."""

    contig: str
    start: int
    end: int
    name: str | None = None
    score: float | None = None
    strand: str | None = None  # '+', '-' or None
    extra: tuple[str, ...] = ()  # columns 7 and beyond, as text
    label: str | None = None  # the column chosen with ``label_column``
    line: int | None = field(default=None, compare=False)

    @property
    def length(self) -> int:
        return self.end - self.start

    def to_bed(self) -> str:
        """The BED line (no newline) for this interval, as short as its fields allow."""
        optional = [self.name or ".", _format_score(self.score), self.strand or "."]
        present = [self.name is not None, self.score is not None, self.strand is not None]
        n = 3 if self.extra else max((i + 1 for i, p in enumerate(present) if p), default=0)
        return "\t".join([self.contig, str(self.start), str(self.end), *optional[:n], *self.extra])


def _format_score(score: float | None) -> str:
    if score is None:
        return "."
    return str(int(score)) if float(score).is_integer() else repr(float(score))


def read_bed(path: str | os.PathLike, *, label_column: int | None = None) -> Iterator[Interval]:
    """Intervals of a BED3+ file; ``label_column`` (0-based column index) fills ``Interval.label``.

    Skips blank, ``#``, ``track`` and ``browser`` lines. Columns are tab-separated (whitespace-separated when
    a line has no tab). Raises MalformedInputError naming file and line for a bad line.
    """
    for number, text in _lines(path):
        if not text.strip() or text.startswith("#") or _HEADER.match(text):
            continue
        cols = text.split("\t") if "\t" in text else text.split()
        yield _parse_bed(cols, path, number, label_column)


def _parse_bed(cols: list[str], path: Any, line: int, label_column: int | None) -> Interval:
    def bad(message: str) -> MalformedInputError:
        return MalformedInputError(message, path=path, line=line, hint="BED is contig, start, end (0-based)")

    if len(cols) < 3:
        raise bad(f"expected at least 3 columns, found {len(cols)}")
    contig, start, end = cols[0], cols[1].strip(), cols[2].strip()
    if not contig:
        raise bad("empty contig name")
    if not (_INT.match(start) and _INT.match(end)):
        raise bad(f"start and end must be non-negative integers, found {cols[1]!r} and {cols[2]!r}")
    if int(start) > int(end):
        raise bad(f"start {start} is after end {end}")
    name = cols[3] if len(cols) > 3 and cols[3] not in ("", ".") else None
    score = _parse_score(cols[4], bad) if len(cols) > 4 else None
    strand = cols[5] if len(cols) > 5 else "."
    if strand not in ("+", "-", "."):
        raise bad(f"strand must be '+', '-' or '.', found {strand!r}")
    label = None
    if label_column is not None:
        if label_column >= len(cols):
            raise bad(f"no column {label_column} (0-based) for the label: the line has {len(cols)} columns")
        label = cols[label_column]
    strand_or_none = None if strand == "." else strand
    return Interval(contig, int(start), int(end), name, score, strand_or_none, tuple(cols[6:]), label, line)


def _parse_score(text: str, bad: Any) -> float | None:
    if text in ("", "."):
        return None
    try:
        value = float(text)
    except ValueError:
        raise bad(f"score must be a number or '.', found {text!r}") from None
    if not math.isfinite(value):
        raise bad(f"score must be finite, found {text!r}")
    return value


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
    for number, text in _lines(path):
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
    for _, text in _lines(path):
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
    if not (_INT.match(start) and _INT.match(end)) or int(start) < 1:
        raise bad(f"start and end must be 1-based positive integers, found {start!r} and {end!r}")
    if int(start) > int(end):
        raise bad(f"start {start} is after end {end}")
    if strand not in ("+", "-", ".", "?"):
        raise bad(f"strand must be '+', '-', '.' or '?', found {strand!r}")
    if phase not in ("0", "1", "2", "."):
        raise bad(f"phase must be 0, 1, 2 or '.', found {phase!r}")
    attributes = _gtf_attributes(attrs, bad) if gtf else _gff3_attributes(attrs, bad)
    return Feature(
        contig, source, kind, int(start) - 1, int(end), _parse_score(score, bad),
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


# -- summaries ---------------------------------------------------------------------------------------------


def _placement(items: Iterable[Any], reference: Reference | None) -> dict[str, int]:
    if reference is None:
        return {}
    lengths = reference.lengths
    unknown = off_end = 0
    for item in items:
        if item.contig not in lengths:
            unknown += 1
        elif item.end > lengths[item.contig]:
            off_end += 1
    return {"unknown_contigs": unknown, "off_contig_end": off_end}


def _per_contig(items: list[Any], label: str) -> dict[str, dict[str, int]]:
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for item in items:
        spans[item.contig].append((item.start, item.end))
    return {c: {label: len(s), "bases_covered": merged_length(s)} for c, s in spans.items()}


def summarize_bed(path: str | os.PathLike, fasta: str | os.PathLike | None = None) -> dict[str, Any]:
    """Counts, per-contig bases covered, strands, and (with ``fasta``) intervals off the reference."""
    intervals = list(read_bed(path))
    contigs = _per_contig(intervals, "intervals")
    strands = Counter(i.strand or "." for i in intervals)
    return {
        "intervals": len(intervals),
        "total_length": sum(i.length for i in intervals),
        "bases_covered": sum(c["bases_covered"] for c in contigs.values()),
        "named": sum(i.name is not None for i in intervals),
        "strands": dict(sorted(strands.items())),
        "contigs": contigs,
    } | _placement(intervals, open_reference(fasta))


def summarize_gff(path: str | os.PathLike, fasta: str | os.PathLike | None = None) -> dict[str, Any]:
    """Feature types, contigs, bases covered, CDS transcripts (spliced, trans-spliced, length and phase)."""
    features = list(read_gff(path, feature=None))
    transcripts = cds_transcripts(features)
    contigs = _per_contig(features, "features")
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
    } | _placement(features, open_reference(fasta))
