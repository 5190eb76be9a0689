"""Regions of a genome: whole contigs, samtools-style region strings, or BED files, as 0-based half-open spans."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from genolong.errors import InconsistentDataError, UsageError
from genolong.io.regions import known
from genolong.io.regions import parse_region as parse_io_region


@dataclass(frozen=True, order=True)
class Region:
    """``contig[start, end)``, 0-based half-open."""

    contig: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def __str__(self) -> str:  # samtools style, 1-based inclusive
        return f"{self.contig}:{self.start + 1}-{self.end}"


def parse_region(text: str, lengths: Mapping[str, int]) -> Region:
    """A samtools-style region string (see :func:`genolong.io.regions.parse_region`) -> Region."""
    return Region(*parse_io_region(text, lengths))


def resolve_regions(
    spec: str | os.PathLike | Sequence[str] | None, lengths: Mapping[str, int]
) -> list[Region]:
    """Regions from a BED path, a list of region strings / contig names, or None (every contig)."""
    if spec is None:
        return [Region(name, 0, n) for name, n in lengths.items()]
    if isinstance(spec, (str, os.PathLike)) and str(spec).lower().endswith((".bed", ".bed.gz")):
        return _regions_from_bed(Path(spec), lengths)
    items = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    regions = [parse_region(str(item), lengths) for item in items]
    if not regions:
        raise UsageError("an empty list of regions was given")
    return regions


def _regions_from_bed(path: Path, lengths: Mapping[str, int]) -> list[Region]:
    from genolong.io.intervals import read_bed

    regions = []
    for interval in read_bed(path):
        if interval.contig not in lengths or interval.end > lengths[interval.contig]:
            raise InconsistentDataError(
                f"interval {interval.contig}:{interval.start}-{interval.end} is not inside the reference",
                path=path,
                hint=known(lengths),
            )
        regions.append(Region(interval.contig, interval.start, interval.end))
    if not regions:
        raise UsageError("the BED file holds no intervals", path=path)
    return regions


def total_length(regions: Iterable[Region]) -> int:
    return sum(r.length for r in regions)


def shared_bases(a: Iterable[Region], b: Iterable[Region]) -> int:
    """Bases covered by both sets of regions (each set's own overlaps counted once)."""
    from genolong.io.intervals import merged_length

    by_contig: dict[str, tuple[list, list]] = {}
    for side, regions in enumerate((a, b)):
        for r in regions:
            by_contig.setdefault(r.contig, ([], []))[side].append((r.start, r.end))
    return sum(merged_length(x) + merged_length(y) - merged_length(x + y) for x, y in by_contig.values())
