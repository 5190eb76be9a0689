"""Labelled sequences for fine-tuning: tables, FASTA headers, BED columns, and per-position BAM coverage.

Every reader returns :class:`Example` records ``(id, sequence, target)``; the format is taken from the suffix:

- ``.tsv`` / ``.csv`` (optionally ``.gz``): a header line; the sequence in a ``sequence`` column, or a region
  in a ``region`` column (``chr:start-end``, 1-based inclusive) or ``contig``/``start``/``end`` columns (BED-style,
  0-based half-open), fetched from the FASTA; the target in ``label`` (or the columns named). An ``id`` column
  names the rows (default: the line number).
- ``.fa`` / ``.fasta`` / ``.fna``: the label in the header's description as ``label=VALUE`` (the key is
  configurable), e.g. ``>seq7 label=enhancer``.
- ``.bed``: a region per line, the label in a column (default column 4, the name; 0-based index 3).

Targets are text as read; :func:`encode_targets` turns them into class ids (classification: the sorted distinct
labels, or the ``classes`` given) or floats (regression). Bad rows raise one-line errors naming file and line.
:func:`coverage_examples` makes per-position targets: windows tiling regions of a FASTA, each base's read depth
from a BAM (``log1p`` optional), shape (L, 1), for a track model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from genolong.errors import InconsistentDataError, MalformedInputError, UsageError

TABLE, FASTA, BED = (".tsv", ".csv"), (".fa", ".fasta", ".fna"), (".bed",)
_DNA = re.compile(r"^[ACGTNacgtnRYSWKMBDHVryswkmbdhv]+$")


@dataclass(frozen=True)
class Example:
    id: str
    sequence: str
    target: Any  # label text (tables, FASTA, BED), or an (L, 1) float32 array (coverage)


def read_examples(path: str | os.PathLike, fasta: Any = None, *, label_columns: Sequence[str] = ("label",),
                  label_key: str = "label", bed_label_column: int = 3) -> list[Example]:  # fmt: skip
    """Examples of a labelled file (see the module docstring); ``fasta`` resolves regions."""
    name = os.fspath(path).lower().removesuffix(".gz")
    if name.endswith(TABLE):
        return _read_table(path, fasta, label_columns)
    if name.endswith(FASTA):
        return _read_fasta(path, label_key)
    if name.endswith(BED):
        return _read_bed(path, fasta, bed_label_column)
    raise UsageError(f"labelled data must be {', '.join(TABLE + FASTA + BED)} (optionally .gz)", path=path)


def _read_table(path: Any, fasta: Any, label_columns: Sequence[str]) -> list[Example]:
    import pandas as pd

    sep = "," if os.fspath(path).lower().removesuffix(".gz").endswith(".csv") else "\t"
    table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    missing = [c for c in label_columns if c not in table.columns]
    has_region = "region" in table.columns or {"contig", "start", "end"} <= set(table.columns)
    if missing or ("sequence" not in table.columns and not has_region):
        raise MalformedInputError(f"columns {list(table.columns)} lack {missing or 'sequence or region'}",
                                  path=path, line=1, hint="a header with sequence|region|contig,start,end and "
                                  "the label columns")  # fmt: skip
    out = []
    for index, values in enumerate(table.to_dict("records")):  # column names as written (any characters)
        line = index + 2  # 1-based, after the header
        if "sequence" in values and values["sequence"]:
            seq = _checked(values["sequence"], path, line)
        else:
            seq = _fetch(fasta, values, path, line)
        empty = [c for c in label_columns if not values[c].strip()]
        if empty:
            raise MalformedInputError(f"missing label ({', '.join(empty)} is empty)", path=path, line=line,
                                      hint="fill it in or leave the row out")  # fmt: skip
        target = values[label_columns[0]] if len(label_columns) == 1 else [values[c] for c in label_columns]
        out.append(Example(values.get("id") or f"line{line}", seq, target))
    return out


def _read_fasta(path: Any, key: str) -> list[Example]:
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    from genolong.io.intervals import open_text

    out = []
    with open_text(path) as handle:
        for number, (header, seq) in enumerate(SimpleFastaParser(handle), 1):
            fields = dict(part.split("=", 1) for part in header.split()[1:] if "=" in part)
            if key not in fields:
                raise MalformedInputError(f"header {header!r} has no {key}=VALUE", path=path, record=str(number))
            out.append(Example(header.split()[0], _checked(seq, path, None, str(number)), fields[key]))
    return out


def _read_bed(path: Any, fasta: Any, column: int) -> list[Example]:
    from genolong.io.intervals import read_bed

    out = []
    for interval in read_bed(path, label_column=column):
        if interval.label is None:
            raise MalformedInputError(f"no label in column {column + 1}", path=path, line=interval.line)
        region = {"contig": interval.contig, "start": str(interval.start), "end": str(interval.end)}
        name = interval.name or f"{interval.contig}:{interval.start + 1}-{interval.end}"
        out.append(Example(name, _fetch(fasta, region, path, interval.line), interval.label))
    return out


def _fetch(fasta: Any, values: dict[str, str], path: Any, line: int | None) -> str:
    from genolong.data.regions import parse_region

    if fasta is None:
        raise UsageError("regions need a reference FASTA (data.fasta)", path=path)
    if values.get("region"):
        span = parse_region(values["region"], fasta.lengths)
        contig, start, end = span.contig, span.start, span.end
    else:
        try:
            contig, start, end = values["contig"], int(values["start"]), int(values["end"])
        except (KeyError, ValueError):
            raise MalformedInputError("no region: give region, or contig/start/end", path=path, line=line) from None
    if contig not in fasta.lengths or not 0 <= start < end <= fasta.lengths[contig]:
        raise InconsistentDataError(f"region {contig}:{start + 1}-{end} is not in the reference", path=path,
                                    line=line)  # fmt: skip
    return fasta.fetch(contig, start, end)


def _checked(seq: str, path: Any, line: int | None, record: str | None = None) -> str:
    if not _DNA.match(seq):
        raise MalformedInputError("the sequence has letters outside the IUPAC DNA alphabet", path=path, line=line,
                                  record=record)  # fmt: skip
    return seq


def encode_targets(examples: Sequence[Example], task: str, classes: Sequence[str] | None = None,
                   path: Any = None) -> tuple[list[Any], list[str]]:  # fmt: skip
    """(targets, classes): class ids for ``classification`` (``classes`` default: the sorted distinct labels),
    floats (a list per example when several columns) for ``regression``."""
    if task == "classification":
        classes = list(classes) if classes else sorted({str(e.target) for e in examples})
        index = {c: i for i, c in enumerate(classes)}
        unknown = next((e for e in examples if str(e.target) not in index), None)
        if unknown is not None:
            raise InconsistentDataError(f"label {unknown.target!r} of {unknown.id} is not one of the classes "
                                        f"{classes}", path=path)  # fmt: skip
        return [index[str(e.target)] for e in examples], classes
    if task == "regression":
        try:
            targets = [[float(v) for v in e.target] if isinstance(e.target, list) else float(e.target)
                       for e in examples]  # fmt: skip
        except ValueError as error:
            raise MalformedInputError(f"a regression target is not a number: {error}", path=path) from None
        if not all(np.isfinite(t).all() for t in targets):
            raise MalformedInputError("a regression target is not finite", path=path)
        return targets, []
    raise UsageError(f"task must be classification or regression for labelled files, got {task!r}")


def coverage_examples(bam: str | os.PathLike, fasta: Any, regions: Sequence[str], length: int, *,
                      log1p: bool = True, min_mapq: int = 0) -> list[Example]:  # fmt: skip
    """Windows of ``length`` bases tiling ``regions`` (the last one may be shorter), each with its per-base read
    depth as an (L, 1) float32 target."""
    from genolong.data.regions import resolve_regions
    from genolong.io.bam import Bam

    out = []
    with Bam(bam, reference=getattr(fasta, "path", None)) as alignments:
        for region in resolve_regions(list(regions), fasta.lengths):
            for start in range(region.start, region.end, length):
                end = min(start + length, region.end)
                depth = alignments.coverage(region.contig, start, end, min_mapq=min_mapq).astype(np.float32)
                target = (np.log1p(depth) if log1p else depth)[:, None]  # (L, 1)
                out.append(Example(f"{region.contig}:{start + 1}-{end}", fasta.fetch(region.contig, start, end),
                                   target))  # fmt: skip
    if not out:
        raise UsageError("no coverage windows: the regions are empty")
    return out


def crop(seq: str, max_length: int) -> str:
    """The central ``max_length`` bases of ``seq`` (all of it when shorter)."""
    if len(seq) <= max_length:
        return seq
    start = (len(seq) - max_length) // 2
    return seq[start : start + max_length]

