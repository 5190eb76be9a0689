"""Variant-effect scoring with a causal DNA language model: the log-likelihood ratio of alt over ref.

``llr = log P(alt window) - log P(ref window)`` in nats (natural log), for each ALT allele of a VCF.

Windows (``W`` = ``window`` bases, default ``min(model context, 1024)``):

- The ref window is centred on the REF allele with the same number of flanking bases on each side:
  ``flank = (W - max(len(ref), len(alt))) // 2``, so it spans ``[pos - flank, end + flank)`` and the longer of
  the ref and alt windows has at most ``W`` bases (for an insertion the ref window is shorter by its length).
- The alt window is the ref window with the variant applied: both share the left flank ``[start, pos)`` and,
  for indels too, cover the same reference bases after the variant, ``[end, window end)``.
- A window that would run past a contig end is shifted (same length) to stay inside the contig; the column
  ``window_start`` (0-based) gives its first base. A contig shorter than the window is taken whole.
- A variant whose REF or ALT is longer than ``W // 2`` is skipped as ``too_long_for_window``.

Tokens before the variant are identical in both windows and so are their log-probabilities under a causal
model: only the tokens from the first differing position onward are summed. The first token of a window is
conditioned on, never predicted, so a variant at the very start of a window (position 0 of a contig) counts on
the forward strand only through its effect on the bases after it.

With ``rc_average`` (the default) the reverse complements of both windows are scored too (there the shared
prefix is the reverse-complemented right flank) and ``llr`` is the mean of ``llr_forward`` and ``llr_reverse``.
Because windows are exactly centred, scoring the reverse-complemented genome gives the same ``llr``.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from genolong.errors import UsageError
from genolong.io.fasta import Fasta
from genolong.io.variants import Variant, read_variants
from genolong.pipelines.loading import load_model, token_log_probs
from genolong.tokenizers.alphabet import reverse_complement

log = logging.getLogger(__name__)

COLUMNS = ("contig", "pos", "id", "ref", "alt", "kind", "llr", "llr_forward", "llr_reverse", "window_start")
TOO_LONG = "too_long_for_window"


@dataclass(frozen=True)
class VariantWindows:
    """The ref and alt windows of one variant; ``shared`` leading bases are the same in both."""

    start: int  # 0-based first reference base of both windows
    ref: str
    alt: str
    shared: int  # length of the common left flank (forward strand)
    shared_rc: int  # length of the common prefix of the reverse complements (the right flank)


def variant_windows(variant: Variant, fasta: Any, window: int) -> VariantWindows | None:
    """The windows of ``variant`` (see the module docstring); None when it is too long for ``window``."""
    longest = max(len(variant.ref), len(variant.alt))
    if longest > window // 2:
        return None
    flank = (window - longest) // 2
    contig_length = fasta.lengths[variant.contig]
    length = min(len(variant.ref) + 2 * flank, contig_length)
    start = min(max(variant.pos - flank, 0), contig_length - length)
    ref = fasta.fetch(variant.contig, start, start + length).upper()
    alt = variant.apply(ref, offset=start)
    left = variant.pos - start
    return VariantWindows(start, ref, alt, left, length - left - len(variant.ref))


class VariantScorer:
    """Scores variants against a reference with a causal language model.

    >>> scorer = VariantScorer.from_pretrained("model_dir", fasta="ref.fa")  # doctest: +SKIP
    >>> table, summary = scorer.score_vcf("calls.vcf.gz")  # doctest: +SKIP
    """

    def __init__(self, model: Any, tokenizer: Any, fasta: str | os.PathLike | Fasta, *, device: str = "cpu",
                 window: int | None = None, rc_average: bool = True, batch_size: int = 16):  # fmt: skip
        context = int(model.config.max_position)
        window = min(context, 1024) if window is None else int(window)
        if not 2 <= window <= context:
            raise UsageError(f"window must be between 2 and the model's context ({context}), got {window}")
        if batch_size < 1:
            raise UsageError(f"batch_size must be positive, got {batch_size}")
        if len(tokenizer.encode("ACGTN")) != 5:
            raise UsageError("variant scoring needs a single-base tokenizer without special tokens")
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.window, self.rc_average, self.batch_size = window, rc_average, batch_size
        self._owns_fasta = not isinstance(fasta, Fasta)
        self.fasta = Fasta(fasta) if self._owns_fasta else fasta
        self.skipped: Counter = Counter()  # variants left out by the last score() call, by reason

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike, *, fasta: str | os.PathLike | Fasta, device: str = "cpu",
                        window: int | None = None, rc_average: bool = True,
                        batch_size: int = 16) -> VariantScorer:  # fmt: skip
        """A scorer from a Lightning checkpoint (.ckpt) or a ``save_pretrained`` directory (causal models)."""
        net, tokenizer, _ = load_model(model, "causal", device)
        return cls(net, tokenizer, fasta, device=device, window=window, rc_average=rc_average,
                   batch_size=batch_size)  # fmt: skip

    def score(self, variants: Iterable[Variant], *, progress: bool = True) -> pd.DataFrame:
        """One row per scored variant (columns :data:`COLUMNS`); variants too long for the window are left
        out and counted in ``self.skipped``."""
        self.skipped = Counter()
        kept: list[tuple[Variant, VariantWindows]] = []
        for variant in variants:
            windows = variant_windows(variant, self.fasta, self.window)
            if windows is None:
                self.skipped[TOO_LONG] += 1
            else:
                kept.append((variant, windows))
        if self.skipped:
            log.warning("%d variants longer than half the window (%d bases) were skipped",
                        self.skipped[TOO_LONG], self.window)  # fmt: skip
        forward = self._llrs([(w.ref, w.alt, w.shared) for _, w in kept], progress, "forward")
        if self.rc_average:
            pairs = [(reverse_complement(w.ref), reverse_complement(w.alt), w.shared_rc) for _, w in kept]
            reverse = self._llrs(pairs, progress, "reverse")
            llr = (forward + reverse) / 2
        else:
            reverse, llr = np.full(len(kept), np.nan), forward
        rows = {
            "contig": [v.contig for v, _ in kept],
            "pos": [v.pos + 1 for v, _ in kept],
            "id": [v.id for v, _ in kept],
            "ref": [v.ref for v, _ in kept],
            "alt": [v.alt for v, _ in kept],
            "kind": [v.kind for v, _ in kept],
            "llr": llr,
            "llr_forward": forward,
            "llr_reverse": reverse,
            "window_start": np.array([w.start for _, w in kept], dtype=np.int64),
        }
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def score_vcf(self, vcf: str | os.PathLike, *, ref_policy: str = "skip",
                  progress: bool = True) -> tuple[pd.DataFrame, dict[str, Any]]:  # fmt: skip
        """(table, summary) for every ALT allele of ``vcf``. The summary is :func:`read_variants`' with
        ``too_long_for_window`` added to ``skipped`` and ``scored`` rows; ``alleles == scored + skipped``."""
        reader = read_variants(vcf, self.fasta, ref_policy=ref_policy)
        table = self.score(reader, progress=progress)
        summary = reader.summary.as_dict()
        summary["skipped"][TOO_LONG] = self.skipped[TOO_LONG]
        summary["scored"] = len(table)
        return table, summary

    def _llrs(self, pairs: list[tuple[str, str, int]], progress: bool, strand: str) -> np.ndarray:
        """(N,) sum of log P(alt tokens from ``shared`` on) minus the same for ref, in nats."""
        jobs = [(seq, shared) for ref, alt, shared in pairs for seq in (ref, alt)]
        totals = np.zeros(len(jobs))
        order = sorted(range(len(jobs)), key=lambda i: len(jobs[i][0]))  # similar lengths pad little
        bar = tqdm(total=len(jobs), desc=f"scoring {strand} windows", unit="window",
                   disable=not progress or len(pairs) <= 8)  # fmt: skip
        for i in range(0, len(order), self.batch_size):
            chunk = order[i : i + self.batch_size]
            totals[chunk] = self._suffix_log_probs([jobs[j] for j in chunk])
            bar.update(len(chunk))
        bar.close()
        return totals[1::2] - totals[0::2]

    def _suffix_log_probs(self, jobs: list[tuple[str, int]]) -> np.ndarray:
        """(B,) sum over tokens t >= max(shared, 1) of log P(token t | tokens < t)."""
        ids = [np.asarray(self.tokenizer.encode(seq), dtype=np.int64) for seq, _ in jobs]
        width = max(x.size for x in ids)
        batch = torch.full((len(ids), width), self.tokenizer.pad_token_id, dtype=torch.long)
        for row, x in enumerate(ids):
            batch[row, : x.size] = torch.from_numpy(x)  # right padding: a causal model's earlier outputs ignore it
        logp = token_log_probs(self.model, batch.to(self.device)).double().cpu().numpy()  # (B, T-1)
        return np.array([logp[row, max(shared, 1) - 1 : x.size - 1].sum()
                         for row, ((_, shared), x) in enumerate(zip(jobs, ids, strict=True))])  # fmt: skip

    def close(self) -> None:
        if self._owns_fasta:
            self.fasta.close()

    def __enter__(self) -> VariantScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_scores(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the table as TSV (the only format for now); NaN cells are left empty."""
    check_output_suffix(path)
    table.to_csv(path, sep="\t", index=False, na_rep="", float_format="%.8g")


def check_output_suffix(path: str | os.PathLike) -> None:
    if not os.fspath(path).endswith(".tsv"):
        raise UsageError("unsupported output format; supported: .tsv", path=path)
