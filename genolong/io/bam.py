"""Aligned reads from BAM/CRAM/SAM: filtered reads of a region and per-base coverage as numpy arrays.

Regions are ``(contig, start, end)`` 0-based half-open, or a samtools-style string ``"chr1:1-100"`` (1-based
inclusive). Filters follow ``samtools view -f/-F/-q`` and, by default, drop what ``samtools depth`` drops:
unmapped, secondary, QC-failed and duplicate alignments (supplementary ones are kept).

CRAM needs its reference FASTA, and htslib is never allowed to download one: ``REF_PATH`` is pointed at a
local non-existent path whenever it is unset or names a URL. Region queries need an index that is not older
than the file; otherwise they raise an error telling the user to run ``samtools index`` (or ``Bam.index()``).
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from genolong.errors import InconsistentDataError, InputMissingError, MalformedInputError, UsageError
from genolong.io.htslib import HtslibLog
from genolong.io.intervals import reference_for
from genolong.io.regions import known, parse_region

logger = logging.getLogger(__name__)

UNMAPPED, SECONDARY, QC_FAIL, DUPLICATE, SUPPLEMENTARY = 0x4, 0x100, 0x200, 0x400, 0x800
BATCH = 4096  # reads pulled per stderr redirection


@dataclass(frozen=True)
class ReadFilter:
    """Which alignments count: ``(flag & include_flags) == include_flags``, no bit of the exclude mask set,
    and ``mapq >= min_mapq``. Each boolean adds its flag to the exclude mask when False; unmapped is always
    excluded."""

    min_mapq: int = 0
    include_flags: int = 0
    exclude_flags: int = 0
    duplicates: bool = False
    secondary: bool = False
    supplementary: bool = True
    qc_fail: bool = False

    @property
    def exclude_mask(self) -> int:
        mask = self.exclude_flags | UNMAPPED
        for keep, flag in ((self.duplicates, DUPLICATE), (self.secondary, SECONDARY),
                           (self.supplementary, SUPPLEMENTARY), (self.qc_fail, QC_FAIL)):  # fmt: skip
            mask |= 0 if keep else flag
        return mask

    def passes(self, read: Any) -> bool:
        flag = read.flag
        return (flag & self.include_flags) == self.include_flags and not flag & self.exclude_mask \
            and read.mapping_quality >= self.min_mapq  # fmt: skip

    def reason(self, read: Any) -> str | None:
        """Why ``read`` is left out (``unmapped``, ``duplicate``, ``secondary``, ``supplementary``, ``qc_fail``,
        ``flags`` for the include/exclude masks, ``low_mapq``), or None if it passes."""
        flag = read.flag
        for name, bit in _NAMED_FLAGS:
            if flag & bit & self.exclude_mask:
                return name
        if (flag & self.include_flags) != self.include_flags or flag & self.exclude_mask:
            return "flags"
        return "low_mapq" if read.mapping_quality < self.min_mapq else None


_NAMED_FLAGS = (("unmapped", UNMAPPED), ("duplicate", DUPLICATE), ("secondary", SECONDARY),
                ("supplementary", SUPPLEMENTARY), ("qc_fail", QC_FAIL))  # fmt: skip


def _forbid_reference_download() -> None:
    """Point REF_PATH at a local path unless it already names only local ones (htslib's default is a URL)."""
    ref_path = os.environ.get("REF_PATH", "")
    if not ref_path or "http" in ref_path or "ftp" in ref_path:
        os.environ["REF_PATH"] = os.path.join(os.devnull, "%s")  # a path that cannot exist: no download


class Bam:
    """A BAM, CRAM or SAM file; use as a context manager. ``reference``: the FASTA, required for CRAM."""

    def __init__(self, path: str | os.PathLike, *, reference: str | os.PathLike | None = None):
        self.path = os.fspath(path)
        self.reference = os.fspath(reference) if reference is not None else None
        if not os.path.exists(self.path):
            raise InputMissingError("no such alignment file", path=self.path)
        if self.reference is not None and not os.path.exists(self.reference):
            raise InputMissingError("no such reference FASTA", path=self.reference)
        with open(self.path, "rb") as probe:
            self.is_cram = probe.read(4) == b"CRAM"
        if self.is_cram and self.reference is None:
            raise UsageError("a CRAM file can only be decoded with its reference FASTA", path=self.path,
                             hint="pass --fasta REF.fa (Bam(path, reference=...))")  # fmt: skip
        self._handle = self._open()

    def _open(self) -> Any:
        import pysam

        if self.is_cram:
            _forbid_reference_download()
        with HtslibLog() as log:
            try:
                handle, error = pysam.AlignmentFile(self.path, "r", check_sq=False,
                                                    reference_filename=self.reference), None  # fmt: skip
            except (OSError, ValueError) as exc:
                handle, error = None, exc
            messages = log.poll()
        if error is not None:
            raise self._error("cannot open as SAM/BAM/CRAM", error, messages)
        if not (handle.is_bam or handle.is_cram or handle.is_sam):  # htslib also reads FASTA/FASTQ as unmapped
            handle.close()
            raise MalformedInputError("not a SAM/BAM/CRAM file (htslib reads it as unaligned FASTA/FASTQ)",
                                      path=self.path, hint="align the reads first (genolong uses aligned reads)")
        for _, text in messages:
            if "index file is older" not in text:  # index_state() reports that, where it matters
                logger.warning("%s: htslib: %s", self.path, text)
        return handle

    def _error(self, what: str, error: Exception, messages: list[tuple[str, str]]) -> Exception:
        detail = "; ".join(t for _, t in messages) or str(error)
        if "MD5" in detail or "reference mismatch" in detail.lower():
            return InconsistentDataError(f"{what}: {detail}", path=self.path,
                                         hint="the FASTA is not the reference this CRAM was written with")
        if isinstance(error, PermissionError):
            return InputMissingError(f"{what}: {error.strerror}", path=self.path)
        return MalformedInputError(f"{what}: {detail}", path=self.path)

    @property
    def lengths(self) -> dict[str, int]:
        """Contig name -> length, from the header."""
        return dict(zip(self._handle.references, self._handle.lengths, strict=True))

    def index_file(self) -> str | None:
        """The index next to the file (.bai, .csi or .crai), if there is one."""
        stem = os.path.splitext(self.path)[0]
        candidates = [f"{self.path}.bai", f"{stem}.bai", f"{self.path}.csi", f"{self.path}.crai"]
        candidates.append(f"{stem}.crai")
        return next((c for c in candidates if os.path.exists(c)), None)

    def index_state(self) -> str:
        """'ok', 'missing' or 'stale' (the index is older than the file)."""
        index = self.index_file()
        if index is None:
            return "missing"
        return "stale" if os.path.getmtime(index) < os.path.getmtime(self.path) else "ok"

    def index(self) -> str:
        """Build the index (``samtools index``) and reopen; returns the index path."""
        import pysam

        self._handle.close()
        try:
            pysam.index(self.path)
        except pysam.SamtoolsError as error:
            raise InconsistentDataError(f"cannot index: {error}".strip(), path=self.path,
                                        hint="the file must be coordinate-sorted: samtools sort") from None
        finally:
            self._handle = self._open()
        return str(self.index_file())

    def _require_index(self) -> None:
        state = self.index_state()
        hint = f"run `samtools index {self.path}` or Bam.index()"
        sort_order = self._handle.header.to_dict().get("HD", {}).get("SO")
        if self._handle.is_sam or sort_order not in (None, "coordinate"):
            hint = "region queries need a coordinate-sorted, indexed BAM or CRAM: samtools sort -o x.bam, then " \
                   "samtools index x.bam"  # fmt: skip
        if state == "missing":
            raise InputMissingError("region queries need an index (.bai/.csi/.crai) and there is none",
                                    path=self.path, hint=hint)  # fmt: skip
        if state == "stale":
            message = f"its index {self.index_file()} is older than the file"
            raise InconsistentDataError(message, path=self.path, hint=hint)

    def region(self, region: str, start: int | None = None, end: int | None = None) -> tuple[str, int, int]:
        """(contig, start, end), 0-based half-open, from a contig with 0-based bounds or a samtools region."""
        lengths = self.lengths
        if start is None and end is None:
            return parse_region(region, lengths, path=self.path, source="the file")
        contig = region
        if contig not in lengths:
            raise InconsistentDataError(f"contig {contig!r} is not in the file's header", path=self.path,
                                        hint=known(lengths))  # fmt: skip
        start = 0 if start is None else start
        end = lengths[contig] if end is None else end
        if not 0 <= start <= end:
            raise UsageError(f"bad region {contig}:{start}-{end} (0-based; region strings are 1-based)")
        if end > lengths[contig]:
            raise InconsistentDataError(f"region end {end} is beyond {contig} (length {lengths[contig]})",
                                        path=self.path)  # fmt: skip
        return contig, start, end

    def fetch(self, region: str | None = None, start: int | None = None, end: int | None = None,
              **filters: Any) -> Iterator[Any]:  # fmt: skip
        """pysam AlignedSegments overlapping the region (the whole file when None) that pass
        ``ReadFilter(**filters)``."""
        keep = ReadFilter(**filters)
        return (read for read in self.records(region, start, end) if keep.passes(read))

    def records(self, region: str | None = None, start: int | None = None, end: int | None = None) -> Iterator[Any]:
        """Every record overlapping the region (the whole file, unplaced unmapped reads included, when None)."""
        if region is None:
            return self._guarded(self._handle.fetch(until_eof=True))
        contig, start, end = self.region(region, start, end)
        self._require_index()
        return self._guarded(self._handle.fetch(contig, start, end))

    def coverage(self, region: str, start: int | None = None, end: int | None = None,
                 **filters: Any) -> np.ndarray:  # fmt: skip
        """Per-base depth over the region, (end - start,) int32: aligned bases (M/=/X) of the reads that pass
        the filters; deletions, skips (N), insertions and clips add nothing (as ``samtools depth``)."""
        contig, start, end = self.region(region, start, end)
        n = end - start
        starts: list[int] = []
        ends: list[int] = []
        for read in self.fetch(contig, start, end, **filters):
            for block_start, block_end in read.get_blocks():
                starts.append(block_start)
                ends.append(block_end)
        s = np.clip(np.asarray(starts, dtype=np.int64) - start, 0, n)
        e = np.clip(np.asarray(ends, dtype=np.int64) - start, 0, n)
        delta = np.bincount(s, minlength=n + 1) - np.bincount(e, minlength=n + 1)  # (n + 1,)
        return np.cumsum(delta[:n]).astype(np.int32)

    def _guarded(self, reads: Iterator[Any]) -> Iterator[Any]:
        """Pull reads in batches with htslib's stderr captured; decoding errors become GenoLongErrors."""
        count = 0
        while True:
            batch: list[Any] = []
            with HtslibLog() as log:
                try:
                    for read in reads:
                        batch.append(read)
                        if len(batch) == BATCH:
                            break
                    error = None
                except (OSError, ValueError) as exc:
                    error = exc
                messages = log.poll()
            yield from batch
            count += len(batch)
            if error is not None:
                raise self._error(f"cannot decode the alignment after record {count}", error, messages)
            if len(batch) < BATCH:
                return

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Bam:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_reference(bam: Bam, fasta: Any) -> None:
    with reference_for(fasta) as reference:
        lengths = reference.lengths
    for contig, length in bam.lengths.items():
        if lengths.get(contig) != length:
            found = f"length {lengths[contig]}" if contig in lengths else "absent"
            raise InconsistentDataError(f"contig {contig} (length {length}) is {found} in the FASTA {fasta}",
                                        path=bam.path, hint="is it the reference the reads were aligned to?")


def summarize_alignments(path: str | os.PathLike, fasta: str | os.PathLike | None = None) -> dict[str, Any]:
    """Flag counts, per-contig reads and mean coverage (default filters), sort order and index state."""
    with Bam(path, reference=fasta) as bam:
        if fasta is not None:
            _check_reference(bam, fasta)
        counts: Counter[str] = Counter()
        reads: Counter[str] = Counter()
        bases: dict[str, int] = defaultdict(int)
        keep, last, in_order = ReadFilter(), (-1, -1), True
        for read in bam._guarded(bam._handle.fetch(until_eof=True)):
            _count_flags(read, counts)
            tid = read.reference_id if read.reference_id >= 0 else 1 << 62  # unplaced reads sort last
            in_order &= (tid, read.reference_start) >= last
            last = (tid, read.reference_start)
            if keep.passes(read):
                reads[read.reference_name] += 1
                bases[read.reference_name] += sum(e - s for s, e in read.get_blocks())
        contigs = {c: {"length": n, "reads": reads[c], "mean_coverage": bases[c] / n if n else 0.0}
                   for c, n in bam.lengths.items()}  # fmt: skip
        header = bam._handle.header.to_dict().get("HD", {})
        return {
            "format": "CRAM" if bam.is_cram else bam._handle.format,
            "records": counts["records"],
            "mapped": counts["mapped"],
            "unmapped": counts["unmapped"],
            "duplicate": counts["duplicate"],
            "secondary": counts["secondary"],
            "supplementary": counts["supplementary"],
            "qc_fail": counts["qc_fail"],
            "mapq0": counts["mapq0"],
            "reverse": counts["reverse"],
            "sort_order": header.get("SO", "unknown"),
            "coordinate_sorted": in_order,
            "index": bam.index_state(),
            "contigs": contigs,
        }


def _count_flags(read: Any, counts: Counter) -> None:
    counts["records"] += 1
    if read.is_unmapped:
        counts["unmapped"] += 1
        return
    counts["mapped"] += 1
    for name, set_ in (("duplicate", read.is_duplicate), ("secondary", read.is_secondary),
                       ("supplementary", read.is_supplementary), ("qc_fail", read.is_qcfail),
                       ("mapq0", read.mapping_quality == 0), ("reverse", read.is_reverse)):  # fmt: skip
        counts[name] += set_
