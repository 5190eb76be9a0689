"""Sequencing reads as a pre-training source: the sequences of filtered alignments of a BAM/CRAM.

``ReadSequences`` reads the file once and keeps the sequences of the reads that pass the filters (by default,
as :class:`genolong.io.bam.ReadFilter`: primary, not duplicate, not QC-fail, MAPQ >= 0, supplementary kept) in
one byte buffer; the mapped reads it leaves out are counted by reason (unmapped reads are never used).
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
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from genolong.errors import InconsistentDataError
from genolong.tokenizers.alphabet import reverse_complement

log = logging.getLogger(__name__)
_EVERY_MAPPED = dict(duplicates=True, secondary=True, supplementary=True, qc_fail=True)  # unmapped: never


def collect_reads(bam: str | os.PathLike, regions: Sequence[str] | None = None, *, reference: str | None = None,
                  min_length: int = 2, **filters: Any) -> tuple[bytes, np.ndarray, Counter]:  # fmt: skip
    """(concatenated sequences, (n + 1,) offsets, counts of reads left out by reason) of the reads that pass."""
    from genolong.io.bam import Bam, ReadFilter

    keep = ReadFilter(**filters)
    parts, offsets, skipped = [], [0], Counter()
    seen: set[tuple[str, int, int]] = set()  # a read overlapping two regions is kept once
    with Bam(bam, reference=reference) as alignments:
        for region in regions or [None]:
            for read in alignments.fetch(region, **_EVERY_MAPPED):  # the filters are applied (and counted) here
                if not keep.passes(read):
                    skipped["filtered"] += 1
                    continue
                key = (read.query_name, read.flag, read.reference_start)
                if region and key in seen:
                    continue
                seen.add(key)
                seq = read.query_sequence
                if seq is None or len(seq) < min_length:
                    skipped["no_sequence" if seq is None else "too_short"] += 1
                    continue
                parts.append(seq.encode())
                offsets.append(offsets[-1] + len(seq))
    if len(offsets) == 1:
        raise InconsistentDataError("no read passes the filters", path=bam, hint="check the regions and filters")
    log.info("%s: %d reads kept, %s", bam, len(offsets) - 1,
             ", ".join(f"{n} {why}" for why, n in skipped.items()) or "none left out")  # fmt: skip
    return b"".join(parts), np.asarray(offsets, dtype=np.int64), skipped


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
