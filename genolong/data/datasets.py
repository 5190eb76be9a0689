"""Windows of a genome as a map-style dataset whose every sample is a pure function of its index.

``GenomeWindows`` serves windows of ``length`` bases from regions of a FASTA, tokenized by any genolong
tokenizer. Two samplings:

* ``"random"`` (training): sample ``g`` is drawn from ``numpy.random.default_rng([seed, g])``: a region chosen
  in proportion to its length, a uniform start, then augmentations. Nothing depends on call order, so
  DataLoader workers, restarts and resumed runs all see the same data for the same indices. The sampler
  (:mod:`genolong.data.samplers`) encodes the epoch in the index.
* ``"tile"`` (validation/test): a fixed tiling at ``stride``; the last window of a region ends at its end and
  may be shorter (padded in the batch, never dropped).

Windows whose fraction of ``N`` exceeds ``max_n_fraction`` are skipped and counted: for tiling, once at
construction (``skipped``); for random sampling, redrawn, with the number of redraws returned in the sample so
the training loop can log it.

With ``soft_mask_weight`` below 1, each sample carries ``loss_weight`` (T,): that weight for every token that
spells a soft-masked (lowercase: repeat-masked) base, 1 elsewhere, so repeats count less in (or, at 0, drop out
of) the training loss, as GPN does; the tokens themselves are unchanged.

With a CDS ``annotation`` (for the codon tokenizer), each window is encoded with the CDS segments overlapping
it (:mod:`genolong.data.annotation`), flipped with the window when it is served reverse-complemented, so codon
tokens always follow the annotated reading frame.
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

from genolong.data.annotation import CdsAnnotation, flip
from genolong.data.regions import Region, resolve_regions
from genolong.errors import InconsistentDataError, UsageError
from genolong.tokenizers.alphabet import as_bytes, reverse_complement
from genolong.tokenizers.factory import takes_cds

_IS_N = np.zeros(256, dtype=bool)
_IS_N[[ord("N"), ord("n")]] = True
MAX_REDRAWS = 1000

log = logging.getLogger(__name__)


def n_fraction(seq: str) -> float:
    codes = as_bytes(seq)
    return float(_IS_N[codes].mean()) if codes.size else 1.0


class GenomeWindows(Dataset):
    """Tokenized windows of ``length`` bases over ``regions`` of ``fasta``.

    Args:
        fasta: path of the reference FASTA (opened lazily, once per process).
        tokenizer: a genolong tokenizer (anything with ``encode(str)`` and ``pad_token_id``).
        length: window length in bases.
        regions: contig names / region strings (``chr1:1-1000``), a BED path, or None for every contig.
        sampling: ``"random"`` or ``"tile"``.
        samples_per_epoch: number of random windows an epoch holds (random sampling).
        stride: distance between tiled windows (default: ``length``, no overlap).
        max_n_fraction: windows with more ``N`` than this are skipped (tile) or redrawn (random).
        reverse_complement: with probability 1/2, serve the reverse complement (random sampling).
        max_shift: shift tiled windows by up to this many bases either way (augmentation for tiled training).
        seed: base of every random draw.
        annotation: CDS annotation (a GFF3/GTF path or a :class:`CdsAnnotation`) giving the codon tokenizer
            its reading frame; only for tokenizers that take ``cds``.
        soft_mask_weight: loss weight of tokens spelling soft-masked bases (1: no ``loss_weight`` is served).
    """

    def __init__(
        self,
        fasta: str | os.PathLike,
        tokenizer: Any,
        length: int,
        regions: str | Sequence[str] | None = None,
        sampling: str = "random",
        samples_per_epoch: int = 1024,
        stride: int | None = None,
        max_n_fraction: float = 0.1,
        reverse_complement: bool = False,
        max_shift: int = 0,
        seed: int = 0,
        annotation: str | os.PathLike | CdsAnnotation | None = None,
        soft_mask_weight: float = 1.0,
    ):
        from genolong.io.fasta import Fasta

        if length < 1:
            raise UsageError(f"window length must be positive, got {length}")
        check_soft_mask_weight(soft_mask_weight)
        if sampling not in ("random", "tile"):
            raise UsageError(f"sampling must be 'random' or 'tile', got {sampling!r}")
        self.fasta_path = os.fspath(fasta)
        self.tokenizer = tokenizer
        self.length = length
        self.sampling = sampling
        self.samples_per_epoch = samples_per_epoch
        self.stride = stride or length
        self.max_n_fraction = max_n_fraction
        self.reverse_complement = reverse_complement
        self.max_shift = max_shift
        self.seed = seed
        self.soft_mask_weight = float(soft_mask_weight)
        self._fasta = Fasta(self.fasta_path)  # Fasta reopens its handle in each worker process
        self.regions: list[Region] = resolve_regions(regions, self._fasta.lengths)
        self.annotation = annotation_for(annotation, tokenizer, self._fasta.lengths)
        self.skipped: Counter[str] = Counter()
        self.windows: list[Region] = self._tile() if sampling == "tile" else []
        short = [r for r in self.regions if r.length < length]
        if sampling == "random" and short:
            log.warning("%d of %d regions are shorter than the %d-base window (e.g. %s): their windows are shorter",
                        len(short), len(self.regions), length, short[0])  # fmt: skip
        weights = np.array([r.length for r in self.regions], dtype=np.float64)
        self._region_p = weights / weights.sum()  # (R,) chance of drawing each region

    def __len__(self) -> int:
        return len(self.windows) if self.sampling == "tile" else self.samples_per_epoch

    @property
    def lengths(self) -> dict[str, int]:
        """Contig lengths of the FASTA."""
        return self._fasta.lengths

    def _tile(self) -> list[Region]:
        if self.stride > self.length:
            raise UsageError(
                f"tiling stride {self.stride} > window length {self.length} would leave bases out"
            )
        windows = []
        for region in self.regions:
            for start in range(region.start, region.end, self.stride):
                window = Region(region.contig, start, min(start + self.length, region.end))
                if n_fraction(self._fasta.fetch(*_span(window))) > self.max_n_fraction:
                    self.skipped["n_fraction"] += 1
                else:
                    windows.append(window)
                if window.end == region.end:
                    break
        if not windows:
            raise InconsistentDataError(
                f"every window of the regions has more than {self.max_n_fraction:.0%} N",
                path=self.fasta_path,
            )
        return windows

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, int(index)])
        if self.sampling == "tile":
            window, redraws = self._shifted(self.windows[index % len(self.windows)], rng), 0
            seq = self._fasta.fetch(*_span(window))
        else:
            window, seq, redraws = self._draw(rng)
        minus = bool(self.reverse_complement and rng.random() < 0.5)
        options = {}
        if self.annotation is not None:
            cds = self.annotation.segments(*_span(window))
            options["cds"] = flip(cds, window.length) if minus else cds
        if minus:
            seq = reverse_complement(seq)
        item: dict[str, Any] = {"contig": window.contig, "start": window.start, "end": window.end,
                                "minus_strand": minus, "redraws": redraws}  # fmt: skip
        if self.soft_mask_weight == 1.0:
            ids = self.tokenizer.encode(seq, **options)
        else:
            ids, soft = soft_masked_tokens(self.tokenizer, seq, **options)
            item["loss_weight"] = torch.from_numpy(np.where(soft, self.soft_mask_weight, 1.0).astype(np.float32))
        return {"input_ids": torch.from_numpy(np.asarray(ids, dtype=np.int64))} | item  # (T,) each

    def _draw(self, rng: np.random.Generator) -> tuple[Region, str, int]:
        """(window, its sequence, number of windows redrawn for too many N)."""
        for redraws in range(MAX_REDRAWS):
            region = self.regions[rng.choice(len(self.regions), p=self._region_p)]
            span = min(self.length, region.length)
            start = region.start + int(rng.integers(0, region.length - span + 1))
            window = Region(region.contig, start, start + span)
            seq = self._fasta.fetch(*_span(window))
            if n_fraction(seq) <= self.max_n_fraction:
                return window, seq, redraws
        raise InconsistentDataError(
            f"{MAX_REDRAWS} random windows in a row had more than {self.max_n_fraction:.0%} N; "
            "choose regions with more sequence",
            path=self.fasta_path,
        )

    def _shifted(self, window: Region, rng: np.random.Generator) -> Region:
        if not self.max_shift:
            return window
        region = next(
            r for r in self.regions if r.contig == window.contig and r.start <= window.start < r.end
        )
        shift = int(rng.integers(-self.max_shift, self.max_shift + 1))
        shift = max(region.start - window.start, min(shift, region.end - window.end))
        return Region(window.contig, window.start + shift, window.end + shift)


def check_soft_mask_weight(weight: float) -> None:
    if not 0.0 <= weight <= 1.0:
        raise UsageError(f"soft_mask_weight must be in [0, 1], got {weight}")


def soft_masked_tokens(tokenizer: Any, seq: str, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ids (T,), soft (T,) bool): whether any base a token spells (its own bases, up to the next token's
    start) is soft-masked, i.e. lowercase."""
    from genolong.tokenizers.vocab import soft_mask_of

    ids, starts = tokenizer.encode_with_positions(seq, **options)  # (T,), (T,) first base of each token
    lowercase_before = np.concatenate([[0], np.cumsum(soft_mask_of(seq))])  # (L + 1,)
    ends = np.append(starts[1:], len(seq))
    return ids, lowercase_before[ends] > lowercase_before[starts]


def annotation_for(annotation: Any, tokenizer: Any, lengths: dict[str, int]) -> CdsAnnotation | None:
    """``annotation`` (None, a GFF3/GTF path or a CdsAnnotation) read against ``lengths``, for ``tokenizer``."""
    if annotation is None:
        return None
    if not takes_cds(tokenizer):
        raise UsageError(f"a CDS annotation was given but the {type(tokenizer).__name__} does not use one",
                         hint="use the codon tokenizer, or leave the annotation out")  # fmt: skip
    return annotation if isinstance(annotation, CdsAnnotation) else CdsAnnotation(annotation, lengths)


def _span(region: Region) -> tuple[str, int, int]:
    return region.contig, region.start, region.end


class PadCollate:
    """Collate ``input_ids`` padded to the longest in the batch, with ``attention_mask``; picklable for workers."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        longest = max(item["input_ids"].numel() for item in items)
        input_ids = torch.full((len(items), longest), self.pad_token_id, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(items), longest), dtype=torch.bool)  # (B, T)
        weights = torch.zeros((len(items), longest)) if "loss_weight" in items[0] else None  # (B, T)
        for row, item in enumerate(items):
            n = item["input_ids"].numel()
            input_ids[row, :n] = item["input_ids"]
            mask[row, :n] = True
            if weights is not None:
                weights[row, :n] = item["loss_weight"]
        batch: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        if weights is not None:
            batch["loss_weight"] = weights
        for key in items[0]:
            if key not in ("input_ids", "loss_weight"):
                values = [item[key] for item in items]
                batch[key] = torch.tensor(values) if isinstance(values[0], (int, bool)) else values
        return batch
