"""Sequencing reads as a pre-training source: the sequences of filtered alignments of a BAM/CRAM.

``ReadSequences`` reads the file once and keeps the sequences of the reads that pass the filters (by default,
as :class:`genolong.io.bam.ReadFilter`: primary, not duplicate, not QC-fail, MAPQ >= 0, supplementary kept) in
one byte buffer; every record it leaves out is counted under one reason (unmapped reads are never used, nor
reads aligned over the validation/test regions, nor reads with more N than allowed).
Sample ``g`` is drawn from ``numpy.random.default_rng([seed, g])`` (as
:class:`~genolong.data.datasets.GenomeWindows` does, so resumed runs and workers see the same data): a read
chosen uniformly, a random ``length``-base piece of it when it is longer (whole otherwise: batches are padded),
reverse-complemented half of the time if asked. Sequences are served as stored (the reference's forward strand).

Memory is the total length of the kept reads: suited to targeted, bacterial or region-restricted BAMs; for a
whole-genome BAM pass ``regions``.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from genolong.data.datasets import n_fraction
from genolong.data.regions import Region
from genolong.errors import InconsistentDataError, MalformedInputError
from genolong.tokenizers.alphabet import reverse_complement

log = logging.getLogger(__name__)
_EVERY_MAPPED = dict(duplicates=True, secondary=True, supplementary=True, qc_fail=True)  # unmapped: never


def collect_reads(bam: str | os.PathLike, regions: Sequence[str] | None = None, *, reference: str | None = None,
                  min_length: int = 2, max_n_fraction: float = 1.0, held_out: Sequence[Region] = (),
                  **filters: Any) -> tuple[bytes, np.ndarray, Counter]:  # fmt: skip
    """(concatenated sequences, (n + 1,) offsets, counts of reads left out by reason) of the reads that pass.

    Every record seen is kept or counted once under one reason: a flag or MAPQ filter (see
    :meth:`genolong.io.bam.ReadFilter.reason`), ``held_out`` (aligned over a region of ``held_out``: those bases
    are validated or tested on), ``no_sequence``, ``too_short`` or ``n_fraction`` (more N than
    ``max_n_fraction``). A read sequence with a letter that is not a base (e.g. ``=``) is malformed input.
    """
    from genolong.io.bam import Bam, ReadFilter

    keep = ReadFilter(**filters)
    parts, offsets, skipped = [], [0], Counter()
    seen: set[tuple[str, int, int]] = set()  # a read overlapping two regions is counted once
    with Bam(bam, reference=reference) as alignments:
        for region in regions or [None]:
            for read in alignments.records(region):
                key = (read.query_name, read.flag, read.reference_start)
                if region and key in seen:
                    continue
                seen.add(key)
                reason = keep.reason(read) or _held_out(read, held_out)
                seq = read.query_sequence if reason is None else None
                if reason is None and (seq is None or len(seq) < min_length):
                    reason = "no_sequence" if seq is None else "too_short"
                if reason is None:
                    _check_bases(seq, bam, read)
                    if n_fraction(seq) > max_n_fraction:
                        reason = "n_fraction"
                if reason is not None:
                    skipped[reason] += 1
                    continue
                parts.append(seq.encode())
                offsets.append(offsets[-1] + len(seq))
    left_out = ", ".join(f"{n} {why}" for why, n in skipped.most_common()) or "none"
    if len(offsets) == 1:
        raise InconsistentDataError(f"no read passes the filters (left out: {left_out})", path=bam,
                                    hint=_NO_READ_HINTS.get(skipped.most_common(1)[0][0] if skipped else "",
                                                            "check the regions and filters"))  # fmt: skip
    log.info("%s: %d reads kept; left out: %s", bam, len(offsets) - 1, left_out)
    if skipped["held_out"]:
        log.warning("%s: %d reads aligned over the validation/test regions are left out of training", bam,
                    skipped["held_out"])  # fmt: skip
    return b"".join(parts), np.asarray(offsets, dtype=np.int64), skipped


_NO_READ_HINTS = {
    "unmapped": "the reads are unaligned: align them to the reference first (genolong trains on aligned reads)",
    "held_out": "every read lies in the validation/test regions: train on other regions",
}
_NOT_A_BASE = re.compile(r"[^ACGTUNRYSWKMBDHVacgtunryswkmbdhv]")


def _held_out(read: Any, regions: Sequence[Region]) -> str | None:
    """'held_out' if the read is aligned over one of ``regions``."""
    for r in regions:
        end = read.reference_end or read.reference_start + 1  # no CIGAR: the position alone
        if read.reference_name == r.contig and read.reference_start < r.end and end > r.start:
            return "held_out"
    return None


def _check_bases(seq: str, bam: Any, read: Any) -> None:
    bad = _NOT_A_BASE.search(seq)
    if bad is not None:
        meaning = " ('=' means 'same as the reference', which genolong does not expand)" if bad[0] == "=" else ""
        raise MalformedInputError(f"read sequence has {bad[0]!r} at position {bad.start() + 1}, not a base{meaning}",
                                  path=bam, record=read.query_name, hint="write the reads with their own bases")


class ReadSequences(Dataset):
    """Tokenized pieces of at most ``length`` bases of filtered reads; see the module docstring."""

    def __init__(self, bam: str | os.PathLike, tokenizer: Any, length: int, *, regions: Sequence[str] | None = None,
                 samples_per_epoch: int = 1000, reverse_complement: bool = True, seed: int = 0,
                 reference: str | None = None, **filters: Any):  # fmt: skip
        self.tokenizer, self.length, self.samples = tokenizer, length, samples_per_epoch
        self.reverse_complement, self.seed = reverse_complement, seed
        self.buffer, self.offsets, self.skipped = collect_reads(bam, regions, reference=reference, **filters)

    @property
    def reads(self) -> int:
        return len(self.offsets) - 1

    def mean_piece_length(self) -> float:
        """The mean number of bases a sample holds: min(read length, ``length``) averaged over the reads."""
        return float(np.minimum(np.diff(self.offsets), self.length).mean())

    def read(self, i: int) -> str:
        return self.buffer[self.offsets[i] : self.offsets[i + 1]].decode()

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, index])
        seq = self.read(int(rng.integers(self.reads)))
        if len(seq) > self.length:
            start = int(rng.integers(len(seq) - self.length + 1))
            seq = seq[start : start + self.length]
        if self.reverse_complement and rng.random() < 0.5:
            seq = reverse_complement(seq)
        return {"input_ids": torch.as_tensor(np.asarray(self.tokenizer.encode(seq), dtype=np.int64))}
