"""Variant-effect scoring: every ALT allele of a VCF (or any list of variants) against a reference, with a model.

    scorer = VariantScorer.from_pretrained("model_dir_or.ckpt", fasta="ref.fa")
    table = scorer.score_vcf("calls.vcf.gz")        # pandas.DataFrame, one row per (record, ALT allele)
    scorer.summary                                  # counts: alleles == scored + skipped, by reason

Methods (``method``; see :mod:`genolong.pipelines.variant_methods` for the exact definitions): ``llr`` (causal
LMs), ``masked_marginal`` (masked LMs, substitutions), ``embedding`` (any model),
``supervised`` (a fine-tuned classification/regression head); ``auto`` picks the one that fits the model.
Single-base, k-mer and codon models score variants; a codon model (``llr`` only) reads its windows in the frames
of a CDS annotation (``annotation``, by default the one it was trained with). Windows: see
:mod:`genolong.pipelines.variant_windows` (``centered`` or ``upstream``, shifted at contig ends, stated by
``window_start``/``window_end``).

Reverse-complement averaging (on by default): both windows are reverse-complemented and scored too, and
``score`` is the mean of ``score_forward`` and ``score_reverse``; for a model that is strand-symmetric by
construction (``rc_mode="average"``) the reverse pass is implied and not repeated.

The table has one row per input allele, in input order: ``pos``/``ref``/``alt`` as written in the VCF, ``variant``
the normalized (trimmed, left-aligned) change that was scored, ``status`` ``scored`` or the reason it was not
(the reader's reasons such as ``ref_mismatch``, ``symbolic``, ``unknown_contig``; ``too_long_for_window``;
``unsupported_by_method``; ``tokens_exceed_context``). Large VCFs are read and scored in chunks
(``iter_score_vcf``) so memory stays bounded; :func:`genolong.pipelines.variant_outputs.write_variant_scores`
streams them to TSV, parquet or an annotated ``.vcf.gz``.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from genolong.data.annotation import CdsAnnotation
from genolong.data.datasets import annotation_for
from genolong.errors import NonFiniteError, UsageError
from genolong.io.alleles import SkippedAllele, Variant, allele_problem, normalize, reference_problem
from genolong.io.fasta import Fasta
from genolong.io.variants import read_variants
from genolong.pipelines.loading import check_batch_size, load_model, parse_dtype, training_annotation
from genolong.pipelines.variant_methods import EXTRA_COLUMNS, METHODS, Scoring, TokenPair, score_strand
from genolong.pipelines.variant_windows import WINDOW_MODES, VariantWindows, variant_windows, with_cds
from genolong.tokenizers.factory import require_annotation, special_token_count, takes_cds

log = logging.getLogger(__name__)

COLUMNS = ("contig", "pos", "id", "ref", "alt", "record", "allele", "variant", "kind", "status", "score",
           "score_forward", "score_reverse", "window_start", "window_end")  # fmt: skip
_DESCRIBED = COLUMNS.index("status")  # the columns before it describe the input allele
TOO_LONG, UNSUPPORTED = "too_long_for_window", "unsupported_by_method"
AMBIGUOUS, NO_CONTEXT, OVER_CONTEXT = "ambiguous_bases", "no_context", "tokens_exceed_context"
SCORER_SKIPS = (TOO_LONG, UNSUPPORTED, AMBIGUOUS, NO_CONTEXT, OVER_CONTEXT)  # decided here, not by the reader
_KIND_METHOD = {"GenoLongForCausalLM": "llr", "GenoLongForMaskedLM": "masked_marginal",
                "GenoLongForSequenceClassification": "supervised"}  # fmt: skip


class VariantScorer:
    """Scores variants against a reference FASTA with a genolong model (see the module docstring).

    Args:
        model, tokenizer: a genolong model (eval mode) and its tokenizer.
        fasta: the reference (path or an open :class:`~genolong.io.fasta.Fasta`).
        annotation: codon models: the CDS of ``fasta`` (GFF3/GTF path or a CdsAnnotation), whose frames the
            windows are read in.
        method: ``auto``, ``llr``, ``masked_marginal``, ``embedding`` or ``supervised``.
        window: window length in bases (default: the model's context, less any BOS/EOS its tokenizer adds,
            at most 1024).
        window_mode: ``centered`` or ``upstream`` (llr only).
        rc_average: also score the reverse strand and average (skipped for strand-symmetric models).
        reuse_prefix: llr only: run the shared prefix once and the two suffixes from its cache.
        target: supervised only: which output is the score, by index or class name (default: the last, e.g. the
            positive class).
        batch_size: variants per forward pass.
    """

    def __init__(self, model: Any, tokenizer: Any, fasta: str | os.PathLike | Fasta, *, method: str = "auto",
                 device: str = "cpu", window: int | None = None, window_mode: str = "centered",
                 rc_average: bool = True, reuse_prefix: bool = True, target: int | str | None = None,
                 batch_size: int = 16, annotation: str | os.PathLike | CdsAnnotation | None = None):  # fmt: skip
        context, special = int(model.config.max_position), special_token_count(tokenizer)
        longest = context - special  # bases: as many tokens or fewer, plus the BOS/EOS (codon models: see _fits)
        window = min(longest, 1024) if window is None else int(window)
        if not 2 <= window <= longest:
            around = f" less the {special} special tokens its tokenizer adds" if special else ""
            raise UsageError(f"window must be between 2 and {longest} bases (the model's context of {context} "
                             f"tokens{around}), got {window}")  # fmt: skip
        check_batch_size(batch_size)
        self.method = _resolve_method(method, model)
        require_annotation(tokenizer, annotation)
        if takes_cds(tokenizer) and self.method != "llr":
            raise UsageError(f"codon models score variants with llr only, not {self.method}")
        if window_mode not in WINDOW_MODES or (window_mode == "upstream" and self.method != "llr"):
            raise UsageError(f"window_mode must be one of {WINDOW_MODES} ('upstream' with llr only), "
                             f"got {window_mode!r} for {self.method}")  # fmt: skip
        self.output_names = output_names(model.config) if self.method == "supervised" else ["score"]
        self.target = _target_index(target, self.output_names)
        self.model, self.tokenizer = model, tokenizer
        self.run = Scoring(model, tokenizer, device, batch_size, reuse_prefix)
        self.window, self.window_mode, self.context = window, window_mode, context
        self.rc_average = rc_average and getattr(model.config, "rc_mode", "none") != "average"
        self._owns_fasta = not isinstance(fasta, Fasta)
        self.fasta = Fasta(fasta) if self._owns_fasta else fasta
        try:
            self.frames = annotation_for(annotation, tokenizer, self.fasta.lengths)  # codon models: CDS frames
        except Exception:
            self.close()
            raise
        self.summary: dict[str, Any] = {}  # counts of the last score_vcf() call

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike, *, fasta: str | os.PathLike | Fasta, device: str = "cpu",
                        dtype: str | torch.dtype | None = None, **options: Any) -> VariantScorer:  # fmt: skip
        """A scorer from a Lightning checkpoint (.ckpt) or a ``save_pretrained`` directory; ``dtype`` (e.g.
        ``bfloat16``) casts the weights; ``options`` are the constructor's (a codon model's ``annotation``
        defaults to the one it was trained with)."""
        dtype = parse_dtype(dtype)  # before the model loads: a bad name is a usage error
        net, tokenizer, meta = load_model(model, None, device)
        options["annotation"] = training_annotation(tokenizer, options.get("annotation"), meta)
        if dtype is not None:
            net = net.to(dtype)
        return cls(net, tokenizer, fasta, device=device, **options)

    @property
    def columns(self) -> list[str]:
        """The table's columns: :data:`COLUMNS` and the method's extra ones."""
        extra = list(EXTRA_COLUMNS[self.method])
        if self.method == "supervised" and len(self.output_names) > 1:
            extra = [f"delta_{name}" for name in self.output_names]
        return [*COLUMNS, *extra]

    def score(self, variants: Iterable[Variant | SkippedAllele], *, progress: bool = True) -> pd.DataFrame:
        """One row per input (variants scored, :class:`SkippedAllele` passed through with their reason).

        Variants made by the caller (not read from a VCF) get the reader's checks and normalization first: a
        contig of the FASTA, inside it, REF and ALT plain bases and different, REF matching the reference
        (unless ``ref_mismatch``), then trimmed and left-aligned; otherwise the row has the reader's reason."""
        items = [self._as_read(item) for item in variants]
        windows: dict[int, VariantWindows] = {}
        inputs: dict[int, tuple] = {}  # per scored variant: what the method scores of each strand
        informative: dict[int, np.ndarray] = {}  # (2,) per scored variant: the strands that give a score
        status = []
        for i, item in enumerate(items):
            if isinstance(item, SkippedAllele):
                status.append(item.reason)
            elif "N" in (item.ref + item.alt).upper():  # an unknown base: nothing to compare
                status.append(AMBIGUOUS)
            elif self.method == "masked_marginal" and len(item.ref) != len(item.alt):
                status.append(UNSUPPORTED)
            elif (found := self._windows(item)) is None:
                status.append(TOO_LONG)
            elif not self._fits(strand_inputs := self._strand_inputs(found)):
                status.append(OVER_CONTEXT)
            elif not (strands := self._informative_strands(strand_inputs)).any():
                status.append(NO_CONTEXT)
            else:
                windows[i], inputs[i], informative[i] = found, strand_inputs, strands
                status.append("scored")
        table = pd.DataFrame(np.nan, index=range(len(items)), columns=self.columns[_DESCRIBED + 1 :])
        if windows:
            scored = [items[i] for i in windows]
            table.iloc[list(windows), :] = self._score_windows(list(windows.values()), list(inputs.values()),
                                                               scored, np.array(list(informative.values())),
                                                               progress)  # fmt: skip
        described = pd.DataFrame([_describe(item) for item in items], columns=list(COLUMNS[:_DESCRIBED]))
        table.insert(0, "status", status)
        return pd.concat([described, table], axis=1).astype({"window_start": "Int64", "window_end": "Int64"})

    def _as_read(self, item: Variant | SkippedAllele) -> Variant | SkippedAllele:
        """A caller's variant as read_variants would give it (see ``score``); the reader's own pass through."""
        if isinstance(item, SkippedAllele) or item.vcf_ref:
            return item
        contig = self.fasta.resolve(item.contig) if item.contig in self.fasta else None
        reason = "unknown_contig" if contig is None else self._problem(item, contig)
        if reason is not None:
            return SkippedAllele(item.contig, item.pos + 1, item.id, item.ref, item.alt, item.record, item.allele,
                                 reason)  # fmt: skip
        fetch = None if item.ref_mismatch else (lambda start, end: self.fasta.fetch(contig, start, end).upper())
        pos, ref, alt = normalize(item.pos, item.ref, item.alt, fetch)
        return replace(item, contig=contig, pos=pos, ref=ref, alt=alt, vcf_pos=item.pos + 1, vcf_ref=item.ref,
                       vcf_alt=item.alt, vcf_contig=item.contig)  # fmt: skip

    def _problem(self, item: Variant, contig: str) -> str | None:
        """The reader's skip reason for a caller's variant on ``contig`` of the FASTA, or None."""
        ref = item.ref.upper()
        reason = reference_problem(item.pos, ref, self.fasta.lengths[contig]) or allele_problem(ref, item.alt.upper())
        if reason is not None or item.ref_mismatch:
            return reason
        return "ref_mismatch" if self.fasta.fetch(contig, item.pos, item.end).upper() != ref else None

    def iter_score_vcf(self, vcf: str | os.PathLike, *, ref_policy: str = "skip", aliases: bool = False,
                       chunk_size: int = 4096, progress: bool = True) -> Iterator[pd.DataFrame]:  # fmt: skip
        """Tables of consecutive chunks of ``vcf``'s alleles; ``self.summary`` is complete once exhausted."""
        items: list[Variant | SkippedAllele] = []
        reader = read_variants(vcf, self.fasta, ref_policy=ref_policy, aliases=aliases, on_skip=items.append)
        counts: Counter = Counter()
        with tqdm(desc="scoring variants", unit="allele", disable=not progress) as bar:
            for variant in reader:
                if len(items) >= chunk_size:  # flush whole records only: an annotated VCF writes them at once
                    cut = next((i for i, item in enumerate(items) if item.record == variant.record), len(items))
                    if cut:
                        yield self._chunk(items[:cut], counts, bar)
                        del items[:cut]
                items.append(variant)
            if items:
                yield self._chunk(items, counts, bar)
        summary = reader.summary.as_dict()
        summary["skipped"] |= {reason: counts[reason] for reason in SCORER_SKIPS}
        summary["scored"] = counts["scored"]
        summary["method"], summary["window"], summary["window_mode"] = self.method, self.window, self.window_mode
        self.summary = summary
        unknown = summary["skipped"]["unknown_contig"]
        if unknown and not aliases:
            log.warning("%d alleles are on contigs the FASTA does not have; if the names differ only as chr1/1 or "
                        "chrM/MT, match them with aliases (--aliases)", unknown)  # fmt: skip
        if counts[TOO_LONG]:
            log.warning("%d alleles longer than half the window (%d bases) were not scored", counts[TOO_LONG],
                        self.window)  # fmt: skip
        if counts[OVER_CONTEXT]:
            log.warning("%d alleles were not scored: their windows' codons with N (4 tokens each) exceed the "
                        "model's context of %d tokens; a shorter --window fits them", counts[OVER_CONTEXT],
                        self.context)  # fmt: skip

    def score_vcf(self, vcf: str | os.PathLike, **options: Any) -> pd.DataFrame:
        """Every ALT allele of ``vcf`` (options as :meth:`iter_score_vcf`); counts in ``self.summary``."""
        chunks = list(self.iter_score_vcf(vcf, **options))
        return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=self.columns)

    def _chunk(self, items: list, counts: Counter, bar: Any) -> pd.DataFrame:
        table = self.score(items, progress=False)
        counts.update(table["status"])
        bar.update(len(items))
        return table

    def _windows(self, variant: Variant) -> VariantWindows | None:
        """The variant's windows (with their CDS segments for a codon model), or None where it does not fit."""
        found = variant_windows(variant, self.fasta, self.window, self.window_mode)
        return found if found is None or self.frames is None else with_cds(found, variant, self.frames)

    def _strand_inputs(self, windows: VariantWindows) -> tuple:
        """(forward, reverse) of what the method scores: for llr each strand's window pair as token ids
        (encoded once, here), for the other methods the window pair itself; reverse None without rc_average."""
        pairs = (windows.forward, windows.reverse if self.rc_average else None)
        return tuple(self.run.encode(p) if self.method == "llr" and p is not None else p for p in pairs)

    def _fits(self, strand_inputs: tuple) -> bool:
        """Whether the windows' tokens fit in the model's context. The window length in bases leaves room for
        them and any BOS/EOS, except for a codon model's windows (llr only): a codon holding an N is
        [UNK_CODON] and its 3 bases, 4 tokens."""
        return all(max(len(t.ref), len(t.alt)) <= self.context for t in strand_inputs if isinstance(t, TokenPair))

    def _informative_strands(self, strand_inputs: tuple) -> np.ndarray:
        """(2,) bool: which strands (forward, reverse) the method gets a score from. A causal LM predicts no
        token of a strand whose windows start with the allele and hold nothing after it (upstream windows at
        a contig end, or a window of one base): its score would be 0, not a measurement."""
        return np.array([x is not None and (not isinstance(x, TokenPair) or x.has_predicted_tokens())
                         for x in strand_inputs])  # fmt: skip

    def _score_windows(self, windows: list[VariantWindows], inputs: list[tuple], variants: list[Variant],
                       informative: np.ndarray, progress: bool) -> np.ndarray:  # fmt: skip
        """(n, 5 + extra): score, score_forward, score_reverse, window_start, window_end, extra columns.
        ``inputs``: each variant's ``_strand_inputs``; ``informative`` (n, 2): the strands that give a score;
        ``score`` is their mean (both, unless one has no context)."""
        strands = 2 if self.rc_average else 1
        bar = tqdm(total=len(windows) * strands, desc=f"{self.method} scores", unit="variant",
                   disable=not progress or len(windows) <= 8)  # fmt: skip
        forward = score_strand(self.method, self.run, [x[0] for x in inputs], bar.update)  # (n, K)
        reverse = score_strand(self.method, self.run, [x[1] for x in inputs], bar.update) if strands == 2 \
            else np.full_like(forward, np.nan)  # fmt: skip
        bar.close()
        strand_scores = np.where(informative[..., None], np.stack([forward, reverse], axis=1), 0.0)  # (n, 2, K)
        both = strand_scores.sum(1) / informative.sum(1, keepdims=True)  # (n, K): mean of the scored strands
        forward[~informative[:, 0]], reverse[~informative[:, 1]] = np.nan, np.nan
        _require_finite(both, variants)
        column = self.target if self.method == "supervised" else 0  # the column that is the score
        extra = both if self.method == "supervised" and both.shape[1] > 1 else both[:, 1:]
        bounds = np.array([[w.start, w.end] for w in windows], dtype=np.float64).reshape(-1, 2)
        return np.column_stack([both[:, column], forward[:, column], reverse[:, column], bounds, extra])

    def close(self) -> None:
        if self._owns_fasta:
            self.fasta.close()

    def __enter__(self) -> VariantScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _require_finite(scores: np.ndarray, variants: list[Variant]) -> None:
    """A NaN or infinite score is a broken model or input, never a result: NonFiniteError (exit 7)."""
    bad = ~np.isfinite(scores).all(axis=1)  # scores (n, K)
    if bad.any():
        first = variants[int(np.argmax(bad))]
        raise NonFiniteError(f"{int(bad.sum())} of {len(variants)} scores are not finite, the first of "
                             f"{first} (record {first.record})",
                             hint="check the model (NaN weights?) and its dtype")  # fmt: skip


def _describe(item: Variant | SkippedAllele) -> tuple:
    """(contig, pos, id, ref, alt, record, allele, variant, kind): the input allele, as the VCF wrote it."""
    where = (item.record, item.allele)
    if isinstance(item, SkippedAllele):
        return item.contig, item.pos, item.id, item.ref, item.alt or ".", *where, "", ""
    if item.vcf_ref:
        contig = item.vcf_contig or item.contig
        return contig, item.vcf_pos, item.id, item.vcf_ref, item.vcf_alt, *where, str(item), item.kind
    return item.contig, item.pos + 1, item.id, item.ref, item.alt, *where, str(item), item.kind


def output_names(config: Any) -> list[str]:
    """Names of a supervised model's outputs: its class names where it has them (a classifier fine-tuned by
    genolong carries them in ``id2label``), else the output indices."""
    n = int(config.num_labels)
    names = [str(config.id2label.get(k, k)) for k in range(n)] if config.id2label else []
    return names if len(names) == n and names != [f"LABEL_{k}" for k in range(n)] else [str(k) for k in range(n)]


def _target_index(target: int | str | None, names: list[str]) -> int:
    """The index of the output ``target``: a name of ``names`` (also when it was parsed as a number: classes
    named 1, 2, 3), else an index; default the last."""
    if target is None:
        return len(names) - 1
    if str(target) in names:
        return names.index(str(target))
    if isinstance(target, (int, np.integer)) and 0 <= target < len(names):
        return int(target)
    raise UsageError(f"target must be one of the model's outputs {names} (by name or index 0..{len(names) - 1}), "
                     f"got {target!r}")


def _resolve_method(method: str, model: Any) -> str:
    kind = type(model).__name__
    if method == "auto":
        if kind not in _KIND_METHOD:
            raise UsageError(f"no default scoring method for a {kind}; choose one of {METHODS}")
        return _KIND_METHOD[kind]
    if method not in METHODS:
        raise UsageError(f"method must be 'auto' or one of {METHODS}, got {method!r}")
    if method != "embedding" and _KIND_METHOD.get(kind) != method:
        raise UsageError(f"method {method!r} needs a {_needs(method)}; this model is a {kind}")
    return method


def _needs(method: str) -> str:
    return {"llr": "causal language model", "masked_marginal": "masked language model",
            "supervised": "sequence classification/regression model"}[method]  # fmt: skip
