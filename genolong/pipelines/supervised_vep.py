"""Supervised variant-effect prediction on frozen embeddings (Caduceus-style), with scikit-learn.

Features of a variant: the mean-pooled final hidden states of its centred ref and alt windows
(:mod:`genolong.pipelines.variant_windows`), each averaged over both strands, as ``[ref, alt - ref]`` (2 D
values). A standardised logistic regression is fitted on labelled variants; its quality is the AUROC of
stratified k-fold cross-validated predictions (each variant predicted by a model that never saw it), reported
per fold and pooled. The final classifier is then fitted on every labelled variant.

    vep = SupervisedVEP.fit(model, tokenizer, "ref.fa", variants, labels, window=1024)
    vep.cv_auroc, vep.predict_proba(other_variants)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genolong.errors import InconsistentDataError, UsageError
from genolong.io.alleles import Variant
from genolong.io.fasta import Fasta
from genolong.pipelines.variant_windows import variant_windows
from genolong.tokenizers.factory import refuse_without_annotation

log = logging.getLogger(__name__)


def variant_features(model: Any, tokenizer: Any, fasta: Fasta, variants: Sequence[Variant], *, window: int,
                     batch_size: int = 16, device: str = "cpu", progress: bool = False) -> np.ndarray:  # fmt: skip
    """(N, 2 D) float32 ``[ref, alt - ref]`` embeddings, each the mean of both strands."""
    from genolong.pipelines.embed import embed_sequences

    refuse_without_annotation(tokenizer, "supervised variant-effect prediction")
    windows = [variant_windows(v, fasta, window) for v in variants]
    if any(w is None for w in windows):
        too_long = next(v for v, w in zip(variants, windows, strict=True) if w is None)
        raise UsageError(f"variant {too_long} is longer than half the window ({window} bases)")
    sequences = [s for w in windows for pair in (w.forward, w.reverse) for s in (pair.ref, pair.alt)]
    embedded = embed_sequences(model, tokenizer, sequences, pooling="mean", batch_size=batch_size, device=device,
                               progress=progress)  # fmt: skip
    embedded = embedded.reshape(len(variants), 2, 2, -1).mean(axis=1)  # (N, ref/alt, D), strands averaged
    ref, alt = embedded[:, 0], embedded[:, 1]
    return np.concatenate([ref, alt - ref], axis=1).astype(np.float32)


def check_folds(folds: int) -> None:
    if not isinstance(folds, int) or folds < 2:
        raise UsageError(f"cross-validation needs at least 2 folds, got {folds!r}")


@dataclass
class SupervisedVEP:
    """A fitted classifier over variant embeddings, with its cross-validated quality."""

    classifier: Any  # a fitted sklearn Pipeline (StandardScaler, LogisticRegression)
    window: int
    cv_auroc: float  # AUROC of the pooled out-of-fold predictions
    fold_aurocs: list[float] = field(default_factory=list)
    cv_predictions: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (N,) out-of-fold P(label 1)

    @classmethod
    def fit(cls, model: Any, tokenizer: Any, fasta: str | os.PathLike | Fasta, variants: Sequence[Variant],
            labels: Sequence[int], *, window: int = 1024, folds: int = 5, regularization: float = 1.0,
            seed: int = 0, batch_size: int = 16, device: str = "cpu",
            progress: bool = False) -> SupervisedVEP:  # fmt: skip
        """Cross-validate, then fit on all of ``variants`` with binary ``labels`` (0/1)."""
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold

        y = np.asarray(labels)
        if len(y) != len(variants):
            raise InconsistentDataError(f"{len(variants)} variants but {len(y)} labels")
        if not np.isin(y, (0, 1)).all():
            raise UsageError("labels must be 0 or 1")
        check_folds(folds)
        smallest = int(min((y == 0).sum(), (y == 1).sum()))
        if smallest < folds:
            raise UsageError(f"{folds}-fold cross-validation needs at least {folds} variants of each label, "
                             f"the rarer label has {smallest}")  # fmt: skip
        with _reference(fasta) as reference:
            x = variant_features(model, tokenizer, reference, variants, window=window, batch_size=batch_size,
                                 device=device, progress=progress)  # fmt: skip
        oof, fold_aurocs = np.zeros(len(y)), []
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
            classifier = _classifier(regularization, seed).fit(x[train], y[train])
            oof[test] = classifier.predict_proba(x[test])[:, 1]
            fold_aurocs.append(float(roc_auc_score(y[test], oof[test])))
        auroc = float(roc_auc_score(y, oof))
        log.info("supervised VEP: %d-fold cross-validated AUROC %.3f (folds %s)", folds, auroc,
                 ", ".join(f"{a:.3f}" for a in fold_aurocs))  # fmt: skip
        final = _classifier(regularization, seed).fit(x, y)
        return cls(final, window, auroc, fold_aurocs, oof)

    def predict_proba(self, model: Any, tokenizer: Any, fasta: str | os.PathLike | Fasta,
                      variants: Sequence[Variant], **options: Any) -> np.ndarray:  # fmt: skip
        """(N,) P(label 1) of new variants (features from the same model the classifier was fitted on)."""
        with _reference(fasta) as reference:
            x = variant_features(model, tokenizer, reference, variants, window=self.window, **options)
        return self.classifier.predict_proba(x)[:, 1]


def labelled_variants(vcf: str | os.PathLike, fasta: Fasta, label_field: str, *, ref_policy: str = "skip",
                      aliases: bool = False) -> tuple[list[Variant], np.ndarray, dict]:  # fmt: skip
    """(variants, labels (N,), reader summary) of a VCF whose INFO field ``label_field`` holds each record's
    label: a Flag (present = 1), or 0/1 / true/false. Records without the field are an error naming the line."""
    import pysam

    from genolong.io.htslib import HtslibLog
    from genolong.io.variants import read_variants

    reader = read_variants(vcf, fasta, ref_policy=ref_policy, aliases=aliases)  # validates the whole file first
    variants = list(reader)
    with HtslibLog(), pysam.VariantFile(os.fspath(vcf)) as source:
        if label_field not in source.header.info:
            raise InconsistentDataError(f"the VCF header declares no INFO field {label_field!r}", path=vcf)
        flag = source.header.info[label_field].type == "Flag"
        raw = [(label_field in rec.info) if flag else rec.info.get(label_field) for rec in source]
    labels = np.array([_label(raw[v.record - 1], vcf, v, label_field) for v in variants], dtype=np.int64)
    return variants, labels, reader.summary.as_dict()


def _label(value: Any, vcf: Any, variant: Variant, key: str) -> int:
    value = value[0] if isinstance(value, tuple) and len(value) == 1 else value
    text = str(value).lower()
    if text in ("1", "true"):
        return 1
    if text in ("0", "false"):
        return 0
    raise InconsistentDataError(f"INFO/{key} of {variant} is {value!r}; labels must be 0/1 or true/false",
                                path=vcf, line=variant.line, record=variant.id)  # fmt: skip


def _classifier(regularization: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=regularization, max_iter=2000, random_state=seed))


class _reference:
    """A Fasta from a path (closed afterwards) or the caller's open one (left open)."""

    def __init__(self, fasta: str | os.PathLike | Fasta):
        self.owned = not isinstance(fasta, Fasta)
        self.fasta = Fasta(fasta) if self.owned else fasta

    def __enter__(self) -> Fasta:
        return self.fasta

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            self.fasta.close()
