"""The data module of fine-tuning: labelled sequences (classification, regression) or coverage tracks.

    genolong fit --config configs/finetune/classification/tiny.yaml

Files are read once in ``setup`` (formats: :mod:`genolong.data.labelled`); without a validation file a
``val_fraction`` of the training examples is held out (seeded). Batches are ``input_ids`` and
``attention_mask`` (B, T), right-padded, and ``labels``: (B,) class ids, (B,) or (B, K) floats, or (B, T, 1)
coverage (zero in the padding, which the mask excludes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from genolong.data.hparams import with_plain_paths
from genolong.data.labelled import Example, coverage_examples, crop, encode_targets, read_examples
from genolong.errors import UsageError
from genolong.tokenizers.alphabet import reverse_complement

log = logging.getLogger(__name__)
TASKS = ("classification", "regression", "tracks")


class LabelledSequences(Dataset):
    """Tokenized examples and their targets; reverse-complement augmentation (tracks flipped with it)."""

    def __init__(self, examples: Sequence[Example], targets: Sequence[Any], tokenizer: Any, *,
                 reverse_complement: bool = False, seed: int = 0):  # fmt: skip
        self.examples, self.targets, self.tokenizer = list(examples), list(targets), tokenizer
        self.reverse_complement, self.seed = reverse_complement, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        seq, target = self.examples[index].sequence, self.targets[index]
        if self.reverse_complement and np.random.default_rng([self.seed, self.epoch, index]).random() < 0.5:
            seq = reverse_complement(seq)
            target = target[::-1].copy() if isinstance(target, np.ndarray) else target
        ids = torch.as_tensor(np.asarray(self.tokenizer.encode(seq), dtype=np.int64))
        return {"input_ids": ids, "labels": target, "id": self.examples[index].id}


class TaskCollate:
    """Right-pad ``input_ids`` (and per-position targets); stack sequence-level targets."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        longest = max(item["input_ids"].numel() for item in items)
        ids = torch.full((len(items), longest), self.pad_token_id, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(items), longest), dtype=torch.long)  # (B, T)
        for row, item in enumerate(items):
            ids[row, : item["input_ids"].numel()] = item["input_ids"]
            mask[row, : item["input_ids"].numel()] = 1
        first = items[0]["labels"]
        if isinstance(first, np.ndarray):  # (L, 1) tracks
            labels = torch.zeros((len(items), longest, first.shape[1]))  # (B, T, K)
            for row, item in enumerate(items):
                labels[row, : len(item["labels"])] = torch.from_numpy(item["labels"])
        elif isinstance(first, int):
            labels = torch.tensor([item["labels"] for item in items], dtype=torch.long)  # (B,)
        else:
            labels = torch.tensor([item["labels"] for item in items], dtype=torch.float32)  # (B,) or (B, K)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "ids": [item["id"] for item in items]}


class SequenceTaskDataModule(L.LightningDataModule):
    """Labelled sequences for :class:`~genolong.training.tasks.SequenceTaskModule`.

    Args:
        task: ``classification``, ``regression`` (labelled files) or ``tracks`` (coverage from ``bam``).
        train, val, test: labelled files (.tsv/.csv, FASTA with ``label=`` headers, BED with a label column).
        fasta: the reference for regions (tables, BED) and for coverage windows.
        classes: class labels in order (default: the sorted distinct training labels).
        label_columns: table columns holding the target (several: a multi-output regression).
        label_key: the key of ``key=value`` labels in FASTA headers.
        bed_label_column: 0-based column of BED labels (3: the name column; 4: the score).
        bam, train_regions, val_regions, test_regions, window, log1p: tracks: read depth of ``bam`` over
            windows of ``window`` bases tiling the regions, log1p-transformed by default.
        val_fraction: without ``val``, the share of training examples held out (seeded).
        max_length: longer sequences are centre-cropped to this many bases (counted and logged).
        tokenizer: tokenizer spec, as for pre-training (``nucleotide``, ``kmer:6``, ...).
        reverse_complement: serve training sequences reverse-complemented with probability 1/2.
    """

    def __init__(self, task: str = "classification", train: str | None = None, val: str | None = None,
                 test: str | None = None, fasta: str | None = None, classes: list[str] | None = None,
                 label_columns: list[str] | None = None, label_key: str = "label", bed_label_column: int = 3,
                 bam: str | None = None, train_regions: list[str] | None = None,
                 val_regions: list[str] | None = None, test_regions: list[str] | None = None,
                 window: int = 1024, log1p: bool = True, val_fraction: float = 0.0, max_length: int | None = None,
                 tokenizer: str = "nucleotide", batch_size: int = 32, eval_batch_size: int | None = None,
                 num_workers: int = 0, reverse_complement: bool = False, seed: int = 0):  # fmt: skip
        super().__init__()
        if task not in TASKS:
            raise UsageError(f"task must be one of {TASKS}, got {task!r}")
        if (task == "tracks") != (bam is not None):
            raise UsageError("the tracks task takes its targets from data.bam, and only it does")
        self.save_hyperparameters()
        with_plain_paths(self.hparams)  # a Path given in Python is stored as a string
        from genolong.tokenizers.factory import build_tokenizer, refuse_without_annotation

        self.tokenizer = build_tokenizer(tokenizer)
        refuse_without_annotation(self.tokenizer, "fine-tuning on labelled sequences")
        self.datasets: dict[str, LabelledSequences] = {}
        self.classes: list[str] = list(classes or [])

    def adopt_classes(self, classes: list[str]) -> None:
        """Encode labels as ``classes`` (a trained classifier's outputs, in order) instead of this data's own
        sorted labels; a no-op where ``classes`` was given to the data module (the model checks it)."""
        if self.hparams.classes or list(classes) == self.classes:
            return
        self.classes = list(classes)
        self.datasets = {}  # built again on the next setup(), with these class ids

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        from genolong.io.fasta import Fasta

        with Fasta(hp.fasta) if hp.fasta else _NoReference() as fasta:
            splits = {name: self._examples(name, fasta) for name in ("train", "val", "test")}
        if not splits["train"] and not splits["test"]:
            raise UsageError("no training or test data: give data.train (or data.bam and data.train_regions)")
        if not splits["val"] and hp.val_fraction > 0 and splits["train"]:
            order = np.random.default_rng(hp.seed).permutation(len(splits["train"]))
            cut = int(round(hp.val_fraction * len(order)))
            splits["val"] = [splits["train"][i] for i in order[:cut]]
            splits["train"] = [splits["train"][i] for i in order[cut:]]
        if hp.task == "classification" and not self.classes:
            self.classes = sorted({str(e.target) for e in splits["train"] or splits["test"]})
        for name, examples in splits.items():
            if examples:
                targets = [e.target for e in examples] if hp.task == "tracks" else \
                    encode_targets(examples, hp.task, self.classes or None, getattr(hp, name))[0]  # fmt: skip
                self.datasets[name] = LabelledSequences(examples, targets, self.tokenizer, seed=hp.seed,
                                                        reverse_complement=hp.reverse_complement and name == "train")
                log.info("%s: %d examples", name, len(examples))

    def _examples(self, split: str, fasta: Any) -> list[Example]:
        hp = self.hparams
        if hp.task == "tracks":
            regions = getattr(hp, f"{split}_regions")
            return coverage_examples(hp.bam, fasta, regions, hp.window, log1p=hp.log1p) if regions else []
        path = getattr(hp, split)
        if path is None:
            return []
        examples = read_examples(path, fasta, label_columns=hp.label_columns or ["label"],
                                 label_key=hp.label_key, bed_label_column=hp.bed_label_column)  # fmt: skip
        if hp.max_length:
            cropped = sum(len(e.sequence) > hp.max_length for e in examples)
            if cropped:
                log.warning("%s: %d sequences longer than %d bases centre-cropped", path, cropped, hp.max_length)
            examples = [Example(e.id, crop(e.sequence, hp.max_length), e.target) for e in examples]
        return examples

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            raise UsageError(f"no {split} data: give data.{split} (or data.{split}_regions)")
        size = self.hparams.batch_size if shuffle else (self.hparams.eval_batch_size or self.hparams.batch_size)
        self.datasets[split].epoch = self.trainer.current_epoch if self.trainer else 0
        return DataLoader(self.datasets[split], batch_size=size, shuffle=shuffle, num_workers=self.hparams.num_workers,
                          collate_fn=TaskCollate(self.tokenizer.pad_token_id),
                          generator=torch.Generator().manual_seed(self.hparams.seed) if shuffle else None)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", shuffle=False) if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


class _NoReference:
    """Stands in for a FASTA when none is given (sequences inline); regions then fail with a clear message."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
