"""``genolong evaluate``: bits per base of a causal model on held-out regions, beside an order-k Markov baseline.

Each region is scored with overlapping windows of ``length`` bases advanced by ``stride``: every window scores
only the bases the previous one did not, so each base after the first ``length - stride`` is predicted from at
least that much context. Regions shorter than 2 bases (nothing to predict from context) are refused, naming
the region, before any scoring. The Markov baseline is fitted on the training regions and scored on exactly the same
positions (A/C/G/T bases the model scored), so the two numbers are comparable.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from genolong.data.regions import Region, resolve_regions
from genolong.errors import InconsistentDataError, UsageError
from genolong.pipelines.baselines import MarkovModel, base_codes
from genolong.pipelines.loading import load_model, token_log_probs

log = logging.getLogger(__name__)


def model_log2_probs(
    model: Any, tokenizer: Any, seq: str, length: int, stride: int, batch_size: int = 8, device: str = "cpu"
) -> np.ndarray:
    """(L,) log2 P(base_t | preceding bases) under a single-base causal model; NaN where not scored."""
    if stride < 1 or stride > length - 1:
        raise UsageError(f"stride must be in 1..length-1 ({length - 1}), got {stride}")
    ids = np.asarray(tokenizer.encode(seq), dtype=np.int64)
    if ids.size != len(seq):
        raise UsageError("per-base evaluation needs a single-base tokenizer (one token per base)")
    out = np.full(len(seq), np.nan)
    # window w covers [s, s+length) and scores positions [max(s+1, first unscored), s+length)
    starts = list(range(0, max(1, len(seq) - length + stride), stride))
    for i in range(0, len(starts), batch_size):
        chunk = starts[i : i + batch_size]
        windows = [ids[s : s + length] for s in chunk]
        width = max(w.size for w in windows)
        batch = torch.full((len(windows), width), tokenizer.pad_token_id, dtype=torch.long)
        for row, w in enumerate(windows):
            batch[row, : w.size] = torch.from_numpy(w)
        logp = token_log_probs(model, batch.to(device)).cpu().numpy() / math.log(2)  # (B, T-1)
        for row, s in enumerate(chunk):
            first = 1 if s == 0 else length - stride  # offset within the window of the first new base
            n = windows[row].size
            out[s + first : s + n] = logp[row, first - 1 : n - 1]
    out[base_codes(seq) < 0] = np.nan  # N and other non-ACGT bases are not scored
    return out


def evaluate_language_model(
    model: str | os.PathLike,
    fasta: str | os.PathLike,
    regions: str | Sequence[str] | None = None,
    train_regions: str | Sequence[str] | None = None,
    length: int = 1024,
    stride: int | None = None,
    markov_orders: Sequence[int] = tuple(range(0, 11)),
    batch_size: int = 8,
    device: str = "cpu",
) -> dict[str, Any]:
    """Bits per base and perplexity of ``model`` on ``regions``, with the Markov baseline beside it."""
    from genolong.io.fasta import Fasta

    net, tokenizer, meta = load_model(model, "causal", device)
    data = meta.get("data", {})
    regions = regions if regions is not None else data.get("test_regions") or data.get("val_regions")
    train_regions = train_regions if train_regions is not None else data.get("train_regions")
    if regions is None:
        raise UsageError(
            "say which regions to evaluate (--regions); the model does not record held-out regions"
        )
    stride = stride or length // 2
    with Fasta(fasta) as fa:
        eval_spans = resolve_regions(regions, fa.lengths)
        train_spans = _training_spans(train_regions, eval_spans, fa.lengths)
        _check_region_lengths(eval_spans, fasta)
        eval_seqs = [fa.fetch(r.contig, r.start, r.end) for r in eval_spans]
        train_seqs = [fa.fetch(r.contig, r.start, r.end) for r in train_spans]
    model_lp = [
        model_log2_probs(net, tokenizer, s, length, stride, batch_size, device)
        for s in tqdm(eval_seqs, desc="scoring regions", unit="region", disable=len(eval_seqs) < 2)
    ]
    scored = [~np.isnan(lp) for lp in model_lp]
    n = int(sum(m.sum() for m in scored))
    if n == 0:
        raise InconsistentDataError(f"no A/C/G/T bases to score in the evaluation regions ({_listed(eval_spans)})",
                                    path=fasta, hint="choose regions with A/C/G/T bases")  # fmt: skip
    model_bits = -float(sum(lp[m].sum() for lp, m in zip(model_lp, scored, strict=True))) / n
    markov = {}
    for order in markov_orders:
        mm = MarkovModel(order).fit(train_seqs)
        markov[order] = -float(sum(mm.log2_probs(s)[m].sum() for s, m in zip(eval_seqs, scored, strict=True))) / n
    best = min(markov, key=markov.get)
    return {
        "model": os.fspath(model),
        "regions": [str(r) for r in eval_spans],
        "baseline_fitted_on": [str(r) for r in train_spans],
        "bases_scored": n,
        "window_length": length,
        "stride": stride,
        "bits_per_base": model_bits,
        "perplexity": 2**model_bits,
        "markov_best_order": best,
        "markov_bits_per_base": markov[best],
        "markov_by_order": {str(k): v for k, v in markov.items()},
        "model_beats_markov": model_bits < markov[best],
    }


MIN_REGION = 2  # one base of context, one predicted


def _check_region_lengths(spans: Sequence[Region], fasta: str | os.PathLike) -> None:
    """InconsistentDataError naming the first region too short to evaluate (an empty contig, a 1-base region)."""
    for span in spans:
        if span.length < MIN_REGION:
            raise InconsistentDataError(f"evaluation region {span} has {span.length} base(s); at least {MIN_REGION} "
                                        "are needed (one of context, one predicted)", path=fasta,
                                        hint="leave it out of --regions, or choose a longer region")  # fmt: skip


def _listed(spans: Sequence[Region], shown: int = 3) -> str:
    return ", ".join(str(s) for s in spans[:shown]) + (", ..." if len(spans) > shown else "")


def _training_spans(train_regions: Any, eval_spans: list[Region], lengths: dict[str, int]) -> list[Region]:
    """The baseline's training regions: as given, else every contig with the evaluation regions cut out."""
    if train_regions is not None:
        return resolve_regions(train_regions, lengths)
    spans = []
    for contig, size in lengths.items():
        cuts = sorted((r.start, r.end) for r in eval_spans if r.contig == contig)
        start = 0
        for a, b in cuts:
            if a > start:
                spans.append(Region(contig, start, a))
            start = max(start, b)
        if start < size:
            spans.append(Region(contig, start, size))
    if not spans:
        raise UsageError("nothing is left outside the evaluation regions to fit the Markov baseline on")
    log.info("Markov baseline fitted on everything outside the evaluation regions")
    return spans
