"""BED intervals, 0-based half-open, and the small helpers the other readers share (:func:`open_text`,
:func:`open_reference`, line numbering, placement on a reference); GFF3/GTF is in :mod:`genolong.io.gff`.

The BED reader is a generator that validates every line and raises
:class:`~genolong.errors.MalformedInputError` naming the file and line.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from genolong.errors import InputMissingError, MalformedInputError

INTEGER = re.compile(r"^\d+$")
_HEADER = re.compile(r"^(track|browser)(\s|$)")


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


@contextmanager
def reference_for(fasta: str | os.PathLike | Reference | None) -> Iterator[Reference | None]:
    """:func:`open_reference` for a ``with`` block: a FASTA opened here from a path is closed at its end."""
    reference = open_reference(fasta)
    try:
        yield reference
    finally:
        if reference is not fasta and hasattr(reference, "close"):
            reference.close()


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


def numbered_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
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
    for number, text in numbered_lines(path):
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
    if not (INTEGER.match(start) and INTEGER.match(end)):
        raise bad(f"start and end must be non-negative integers, found {cols[1]!r} and {cols[2]!r}")
    if int(start) > int(end):
        raise bad(f"start {start} is after end {end}")
    name = cols[3] if len(cols) > 3 and cols[3] not in ("", ".") else None
    score = parse_score(cols[4], bad) if len(cols) > 4 else None
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


def parse_score(text: str, bad: Any) -> float | None:
    if text in ("", "."):
        return None
    try:
        value = float(text)
    except ValueError:
        raise bad(f"score must be a number or '.', found {text!r}") from None
    if not math.isfinite(value):
        raise bad(f"score must be finite, found {text!r}")
    return value


# -- summaries ---------------------------------------------------------------------------------------------


def placement_counts(items: Iterable[Any], reference: Reference | None) -> dict[str, int]:
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


def per_contig_counts(items: list[Any], label: str) -> dict[str, dict[str, int]]:
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for item in items:
        spans[item.contig].append((item.start, item.end))
    return {c: {label: len(s), "bases_covered": merged_length(s)} for c, s in spans.items()}


def summarize_bed(path: str | os.PathLike, fasta: str | os.PathLike | None = None) -> dict[str, Any]:
    """Counts, per-contig bases covered, strands, and (with ``fasta``) intervals off the reference."""
    intervals = list(read_bed(path))
    contigs = per_contig_counts(intervals, "intervals")
    strands = Counter(i.strand or "." for i in intervals)
    with reference_for(fasta) as reference:
        placement = placement_counts(intervals, reference)
    return {
        "intervals": len(intervals),
        "total_length": sum(i.length for i in intervals),
        "bases_covered": sum(c["bases_covered"] for c in contigs.values()),
        "named": sum(i.name is not None for i in intervals),
        "strands": dict(sorted(strands.items())),
        "contigs": contigs,
    } | placement
