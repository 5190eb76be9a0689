"""Region strings, samtools style: the one parser behind every ``--region(s)`` option and ``Bam.fetch``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from genolong.errors import InconsistentDataError, UsageError

_SPAN = re.compile(r"^(\d[\d,]*)(?:-(\d[\d,]*)?)?$")


def parse_region(
    text: str, lengths: Mapping[str, int], *, path: str | os.PathLike | None = None, source: str = "the reference"
) -> tuple[str, int, int]:
    """``"chr1"`` (the whole contig), ``"chr1:1,001-2,000"`` (1-based, inclusive), ``"chr1:1001"`` or
    ``"chr1:1001-"`` (to the contig's end) -> (contig, start, end), 0-based half-open, checked against lengths.

    A name that is itself a contig is taken whole, so contig names may contain ':' (``HLA-A*01:01``).
    A malformed or empty span is a UsageError; a contig or end that the reference lacks is InconsistentDataError.
    """
    if text in lengths:
        return text, 0, lengths[text]
    contig, _, span = text.rpartition(":")
    match = _SPAN.match(span) if contig else None
    if match is None:
        if contig in lengths:
            raise UsageError(f"region {text!r}: {span!r} is not start-end (1-based, inclusive)", path=path)
        raise InconsistentDataError(
            f"region {text!r} is neither a contig of {source} nor contig:start-end", path=path, hint=known(lengths)
        )
    if contig not in lengths:
        raise InconsistentDataError(
            f"region {text!r}: contig {contig!r} is not in {source}", path=path, hint=known(lengths)
        )
    first = int(match.group(1).replace(",", ""))
    last = int(match.group(2).replace(",", "")) if match.group(2) else lengths[contig]
    if first < 1 or last < first:
        raise UsageError(f"region {text!r} is empty or starts before 1 (regions are 1-based, inclusive)", path=path)
    if last > lengths[contig]:
        raise InconsistentDataError(
            f"region {text!r} ends beyond {contig} (length {lengths[contig]:,})", path=path
        )
    return contig, first - 1, last


def known(lengths: Mapping[str, int]) -> str:
    """A hint naming the first contigs of a reference."""
    names = list(lengths)
    shown = ", ".join(names[:5]) + (f", ... ({len(names)} contigs)" if len(names) > 5 else "")
    return f"contigs: {shown}"
