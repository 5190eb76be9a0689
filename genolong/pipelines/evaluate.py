"""``genolong evaluate``: bits per base of a causal model on held-out regions, beside an order-k Markov baseline.

Each region is tokenized once (a codon model reads the CDS annotation's frames) and scored with overlapping
windows of ``length`` tokens advanced by ``stride``: every window scores only the tokens the previous one did
not, so each token after the first ``length - stride`` is predicted from at least that much context. Models
of any tokenizer are scored per base: a k-mer or codon token's bits are shared by the bases it spells (as in
training's bits per base). Regions shorter than 2 bases (nothing to predict from context) are refused, naming
the region, before any scoring. The Markov baseline is fitted on the training regions and scored on exactly the
same positions (A/C/G/T bases the model scored), so the two numbers are comparable.
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

from genolong.data.datasets import annotation_for
from genolong.data.regions import Region, resolve_regions, shared_bases, total_length
from genolong.errors import InconsistentDataError, UsageError
from genolong.pipelines.baselines import MarkovModel, base_codes
from genolong.pipelines.loading import check_batch_size, load_model, token_log_probs, training_annotation
from genolong.tokenizers.factory import bases_per_token, require_annotation

log = logging.getLogger(__name__)


def encode_region(tokenizer: Any, seq: str, cds: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``seq``'s token ids (T,) and the base offset where each token starts (T,); ``cds``: the CDS segments in
    ``seq`` coordinates, for a codon tokenizer."""
    ids, starts = tokenizer.encode_with_positions(seq, **({} if cds is None else {"cds": list(cds)}))
    return ids.astype(np.int64), starts


def model_log2_probs(
    model: Any,
    tokenizer: Any,
    seq: str,
    encoded: tuple[np.ndarray, np.ndarray],
    length: int,
    stride: int,
    batch_size: int = 8,
    device: str = "cpu",
    spelled_by_id: Sequence[int] | None = None,
) -> np.ndarray:
    """(L,) log2 P(base_t | preceding bases) under a causal model; NaN where not scored.

    ``encoded``: ``encode_region(tokenizer, seq, ...)``. Windows of ``length`` tokens advanced by ``stride``
    tokens score every token after the first. A token of several bases (a k-mer, a codon) shares its log2
    probability equally among the bases it spells, so sums over bases are sums over tokens. Bases spelled by no
    scored token (N, ambiguity codes) are NaN.
    ``spelled_by_id``: ``bases_per_token(tokenizer)``, when the caller has it (it decodes the whole vocabulary).
    """
    ids, starts = encoded  # (T,), (T,)
    token_lp = _token_log2_probs(model, tokenizer.pad_token_id, ids, length, stride, batch_size, device)
    if spelled_by_id is None:
        spelled_by_id = bases_per_token(tokenizer)
    spelled = np.asarray(spelled_by_id, dtype=np.int64)[ids]  # (T,) 0 for unscored tokens
    keep = (spelled > 0) & ~np.isnan(token_lp)
    spelled, first = spelled[keep], starts[keep]
    # position of every base each kept token spells: its start plus 0..spelled-1
    offsets = np.arange(spelled.sum()) - np.repeat(np.cumsum(spelled) - spelled, spelled)
    out = np.full(len(seq), np.nan)
    out[np.repeat(first, spelled) + offsets] = np.repeat(token_lp[keep] / spelled, spelled)
    out[base_codes(seq) < 0] = np.nan  # only A/C/G/T bases are scored
    return out


def _token_log2_probs(
    model: Any, pad_id: int, ids: np.ndarray, length: int, stride: int, batch_size: int, device: str
) -> np.ndarray:
    """(T,) log2 P(token t | tokens before it, within its window); NaN for token 0 (no context)."""
    _check_window(length, stride)
    out = np.full(ids.size, np.nan)
    # window w covers tokens [s, s+length) and scores [max(s+1, first unscored), s+length)
    starts = list(range(0, max(1, ids.size - length + stride), stride))
    for i in range(0, len(starts), batch_size):
        chunk = starts[i : i + batch_size]
        windows = [ids[s : s + length] for s in chunk]
        width = max(w.size for w in windows)
        batch = torch.full((len(windows), width), pad_id, dtype=torch.long)
        for row, w in enumerate(windows):
            batch[row, : w.size] = torch.from_numpy(w)
        logp = token_log_probs(model, batch.to(device)).cpu().numpy() / math.log(2)  # (B, T-1)
        for row, s in enumerate(chunk):
            first = 1 if s == 0 else length - stride  # offset within the window of the first new token
            n = windows[row].size
            out[s + first : s + n] = logp[row, first - 1 : n - 1]
    return out


def evaluate_language_model(
    model: str | os.PathLike,
    fasta: str | os.PathLike,
    regions: str | Sequence[str] | None = None,
    train_regions: str | Sequence[str] | None = None,
    length: int | None = None,
    stride: int | None = None,
    markov_orders: Sequence[int] = tuple(range(0, 11)),
    batch_size: int = 8,
    device: str = "cpu",
    annotation: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Bits per base and perplexity of ``model`` on ``regions``, with the Markov baseline beside it.

    ``length`` and ``stride`` count tokens (bases for a single-base model); ``length`` defaults to windows of
    about the bases the model was trained on (``_tokens_spanning_training_windows``), at most its context. A
    codon model needs the CDS annotation (GFF3/GTF) of ``fasta``: ``annotation``, else the one it was trained
    with.
    """
    from genolong.io.fasta import Fasta

    check_batch_size(batch_size)
    net, tokenizer, meta = load_model(model, "causal", device)
    data = meta.get("data", {})
    regions = regions if regions is not None else data.get("test_regions") or data.get("val_regions")
    train_regions = train_regions if train_regions is not None else data.get("train_regions")
    if regions is None:
        raise UsageError(
            "say which regions to evaluate (--regions); the model does not record held-out regions"
        )
    if length is not None:  # checked before any work; the default needs the sequences
        _check_window(length, length // 2 if stride is None else stride)
    annotation = training_annotation(tokenizer, annotation, meta)
    require_annotation(tokenizer, annotation)
    with Fasta(fasta) as fa:
        eval_spans = resolve_regions(regions, fa.lengths)
        train_spans = _training_spans(train_regions, eval_spans, fa.lengths)
        _check_region_lengths(eval_spans, fasta)
        _check_disjoint(eval_spans)
        frames = annotation_for(annotation, tokenizer, fa.lengths)
        eval_seqs = [fa.fetch(r.contig, r.start, r.end) for r in eval_spans]
        train_seqs = [fa.fetch(r.contig, r.start, r.end) for r in train_spans]
    encoded = [encode_region(tokenizer, s, None if frames is None else frames.segments(r.contig, r.start, r.end))
               for s, r in zip(eval_seqs, eval_spans, strict=True)]  # fmt: skip
    if length is None:  # at most the model's context
        tokens_per_base = sum(ids.size for ids, _ in encoded) / sum(len(s) for s in eval_seqs)
        length = min(_tokens_spanning_training_windows(data, tokens_per_base), int(net.config.max_position))
    stride = length // 2 if stride is None else stride
    _check_window(length, stride)
    spelled_by_id = bases_per_token(tokenizer)  # once, not per region
    model_lp = [
        model_log2_probs(net, tokenizer, s, enc, length, stride, batch_size, device, spelled_by_id=spelled_by_id)
        for s, enc in tqdm(list(zip(eval_seqs, encoded, strict=True)), desc="scoring regions", unit="region",
                           disable=len(eval_seqs) < 2)  # fmt: skip
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
    seen = shared_bases(train_spans, eval_spans)
    if seen:
        log.warning("the Markov baseline's training regions hold %d of the %d evaluated bases: it is scored on bases "
                    "it was fitted on (give --train_regions apart from --regions)", seen,
                    total_length(eval_spans))  # fmt: skip
    return {
        "model": os.fspath(model),
        "regions": [str(r) for r in eval_spans],
        "baseline_fitted_on": [str(r) for r in train_spans],
        "baseline_overlap_bases": seen,
        "bases_scored": n,
        "tokenizer": type(tokenizer).__name__,
        "window_length": length,
        "stride": stride,
        "bits_per_base": model_bits,
        "perplexity": 2**model_bits,
        "markov_best_order": best,
        "markov_bits_per_base": markov[best],
        "markov_by_order": {str(k): v for k, v in markov.items()},
        "model_beats_markov": model_bits < markov[best],
    }


def _tokens_spanning_training_windows(data: dict, tokens_per_base: float) -> int:
    """The default window, in tokens: about as many bases as the model's training windows (``eval_length``, else
    the last curriculum stage; 1024 when the model records none), at the evaluated sequences' tokens per base.
    Windows in bases are what training used, so a codon or k-mer model is not asked to read further back than it
    learned to (1024 tokens of codons span ~2,400 bases, beyond a 1024-base window's ~430 tokens)."""
    stages = data.get("stages")
    bases = data.get("eval_length") or (stages[-1][0] if stages else data.get("length")) or 1024
    return max(2, round(int(bases) * tokens_per_base))


def _check_window(length: int, stride: int) -> None:
    if length < 2 or not 1 <= stride <= length - 1:
        raise UsageError(f"windows of {length} tokens advanced by {stride}: the length must be at least 2 and "
                         "the stride in 1..length-1", hint="e.g. --length 1024 --stride 512")  # fmt: skip


MIN_REGION = 2  # one base of context, one predicted


def _check_region_lengths(spans: Sequence[Region], fasta: str | os.PathLike) -> None:
    """InconsistentDataError naming the first region too short to evaluate (an empty contig, a 1-base region)."""
    for span in spans:
        if span.length < MIN_REGION:
            raise InconsistentDataError(f"evaluation region {span} has {span.length} base(s); at least {MIN_REGION} "
                                        "are needed (one of context, one predicted)", path=fasta,
                                        hint="leave it out of --regions, or choose a longer region")  # fmt: skip


def _check_disjoint(spans: Sequence[Region]) -> None:
    """UsageError naming two evaluation regions that overlap (their shared bases would count twice)."""
    holder = None  # the region reaching furthest right so far on this contig
    for span in sorted(spans):
        if holder is not None and holder.contig == span.contig and span.start < holder.end:
            raise UsageError(f"evaluation regions {holder} and {span} overlap: their shared bases would be scored "
                             "twice", hint="merge them, or give each base once")  # fmt: skip
        if holder is None or holder.contig != span.contig or span.end > holder.end:
            holder = span


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
