"""CDS annotation for training windows: the codon tokenizer's frame, looked up per window.

``CdsAnnotation`` reads the CDS lines of a GFF3/GTF file once, checks them against the FASTA (every CDS needs a
strand and a phase, and must lie inside its contig; CDS on contigs the FASTA lacks are counted and reported, and
an annotation sharing no contig with the FASTA is refused), and answers ``segments(contig, start, end)``: the CDS
overlapping a window, in window coordinates, as the codon tokenizer takes them (a CDS may run past either end of
the window; its frame still counts from its own ends). ``flip`` turns those segments into the ones of the
reverse-complemented window.

Lookup is two binary searches per window over per-contig arrays sorted by start (with the running maximum of the
ends, so long CDS that start far upstream are still found), then a filter of the candidates in between.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Mapping

import numpy as np

from genolong.errors import InconsistentDataError, MalformedInputError
from genolong.tokenizers.cds import CdsSegment

log = logging.getLogger(__name__)


class CdsAnnotation:
    """CDS features of ``path`` (GFF3 or GTF) on the contigs of a FASTA with ``lengths``; picklable."""

    def __init__(self, path: str | os.PathLike, lengths: Mapping[str, int]):
        from genolong.io.gff import read_gff

        self.path = os.fspath(path)
        rows: dict[str, list[tuple[int, int, int, int]]] = defaultdict(list)  # contig -> (start, end, minus, phase)
        unknown: Counter[str] = Counter()
        for f in read_gff(self.path, "CDS"):
            if f.strand is None or f.phase is None:
                missing = "strand" if f.strand is None else "phase"
                raise MalformedInputError(
                    f"CDS {f.contig}:{f.start + 1}-{f.end} has no {missing} ('.'): the codon frame is unknown",
                    path=self.path, line=f.line, hint="give every CDS line a strand (+/-) and a phase (0, 1, 2)",
                )  # fmt: skip
            if f.contig not in lengths:
                unknown[f.contig] += 1
                continue
            if f.end > lengths[f.contig]:
                raise InconsistentDataError(
                    f"CDS {f.contig}:{f.start + 1}-{f.end} runs past the end of its contig "
                    f"({lengths[f.contig]} bases): is this the annotation of this FASTA?",
                    path=self.path, line=f.line,
                )  # fmt: skip
            rows[f.contig].append((f.start, f.end, int(f.strand == "-"), f.phase))
        if not rows:
            raise InconsistentDataError(
                "no CDS of the annotation lies on a contig of the FASTA"
                + (f" (its contigs: {', '.join(sorted(unknown)[:5])})" if unknown else " (it has no CDS lines)"),
                path=self.path,
            )
        if unknown:
            log.warning("%s: %d CDS on %d contigs not in the FASTA are left out (e.g. %s)",
                        self.path, sum(unknown.values()), len(unknown), next(iter(unknown)))  # fmt: skip
        self.cds_count = sum(len(r) for r in rows.values())
        self._by_contig = {contig: _sorted_table(r) for contig, r in rows.items()}

    def segments(self, contig: str, start: int, end: int) -> list[CdsSegment]:
        """The CDS overlapping ``contig[start, end)``, in window coordinates (0 = ``start``), by start."""
        table = self._by_contig.get(contig)
        if table is None:
            return []
        starts, ends, running_end, minus, phase = table
        first = int(np.searchsorted(running_end, start, side="right"))  # earlier CDS all end at or before start
        last = int(np.searchsorted(starts, end, side="left"))  # later CDS all start at or after end
        hits = first + np.flatnonzero(ends[first:last] > start)
        return [
            CdsSegment(int(starts[i]) - start, int(ends[i]) - start, "-" if minus[i] else "+", int(phase[i]))
            for i in hits
        ]


def flip(segments: list[CdsSegment], length: int) -> list[CdsSegment]:
    """The segments of the reverse complement of a ``length``-base window (phase counts from the 5' end, which
    the flip carries along)."""
    return [CdsSegment(length - s.end, length - s.start, "-" if s.strand == "+" else "+", s.phase) for s in segments]


def _sorted_table(rows: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, ...]:
    """(starts, ends, running max of ends, minus-strand flags, phases), sorted by start."""
    table = np.array(sorted(rows), dtype=np.int64)  # (n, 4)
    starts, ends, minus, phase = table.T
    return starts, ends, np.maximum.accumulate(ends), minus.astype(bool), phase
