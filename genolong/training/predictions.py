"""``genolong predict``: the predictions of a fine-tuned sequence model, written to a file, one row per sequence.

Classification: ``id``, ``label`` (the input's own label), then ``p_<class>`` for every class; regression:
``id``, ``label``, ``prediction`` (``label_<k>``, ``prediction_<k>`` for several outputs). Per-position tracks:
a ``.npz`` with ``ids`` (N,) and, under the keys ``"0"`` .. ``"N-1"``, one (length, outputs) array per sequence.
Written, by default, to ``predictions.tsv`` (``.npz`` for tracks) under ``trainer.default_root_dir``;
``--predictions.output`` chooses the file (``.tsv``, ``.csv`` or ``.parquet`` for tables).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from genolong.errors import UsageError

log = logging.getLogger(__name__)
TABLE_SUFFIXES = (".tsv", ".csv", ".parquet")


class PredictionWriter(L.Callback):
    """Collects ``predict_step`` outputs with the sequence ids and writes them when prediction ends.

    Args:
        output: the file to write (default: predictions.tsv, or predictions.npz for tracks, under the run folder).
    """

    def __init__(self, output: str | None = None):
        self.output = output
        self._rows: list[dict[str, Any]] = []
        self._tracks: list[tuple[str, np.ndarray]] = []

    def _target(self, trainer: L.Trainer, task: str) -> Path:
        default = "predictions.npz" if task == "tracks" else "predictions.tsv"
        path = Path(self.output or Path(trainer.default_root_dir) / default)
        wanted = (".npz",) if task == "tracks" else TABLE_SUFFIXES
        if path.suffix not in wanted:
            raise UsageError(f"predictions of a {task} model are written as {' or '.join(wanted)}", path=path)
        if not path.parent.is_dir():
            raise UsageError("the folder of the predictions file does not exist", path=path)
        return path

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._target(trainer, pl_module.hparams.task)  # refuse a bad output before any work
        self._rows, self._tracks = [], []

    def on_predict_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        task = pl_module.hparams.task
        values = outputs.float().cpu().numpy()  # (B, C), (B,), (B, K) or (B, T, K)
        lengths = batch["attention_mask"].sum(-1).tolist()
        classes = getattr(trainer.datamodule, "classes", [])
        for row, (name, label) in enumerate(zip(batch["ids"], batch["labels"].cpu().numpy(), strict=True)):
            if task == "tracks":
                self._tracks.append((name, values[row, : lengths[row]]))  # (L, K)
                continue
            record: dict[str, Any] = {"id": name}
            if task == "classification":
                record["label"] = classes[int(label)] if classes else int(label)
                record |= {f"p_{c}": float(p) for c, p in zip(classes or range(values.shape[1]), values[row],
                                                                strict=True)}  # fmt: skip
            else:
                record |= _columns("label", label) | _columns("prediction", values[row])
            self._rows.append(record)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        path = self._target(trainer, pl_module.hparams.task)
        if pl_module.hparams.task == "tracks":
            arrays = {str(i): values for i, (_, values) in enumerate(self._tracks)}
            np.savez(path, ids=np.array([name for name, _ in self._tracks]), **arrays)
            count = len(self._tracks)
        else:
            import pandas as pd

            table = pd.DataFrame(self._rows)
            if path.suffix == ".parquet":
                table.to_parquet(path, index=False)
            else:
                table.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)
            count = len(table)
        log.info("predictions for %d sequences written to %s", count, path)


def _columns(name: str, values: Any) -> dict[str, float]:
    """{name: v} for one value, {name_0: v0, name_1: v1, ...} for several."""
    flat = np.atleast_1d(np.asarray(values, dtype=np.float64))
    return {name: float(flat[0])} if flat.size == 1 else {f"{name}_{k}": float(v) for k, v in enumerate(flat)}
