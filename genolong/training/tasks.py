"""Fine-tuning: classification, regression and per-position track heads on a (pre-trained) genolong backbone.

The backbone comes from ``pretrained`` (a genolong Lightning checkpoint or a ``save_pretrained`` directory of
any genolong model: its config and backbone weights are taken, its head dropped) or is built from ``preset``
(training from scratch). ``freeze_backbone`` trains the head only. Metrics (torchmetrics), logged as ``val/*``
and ``test/*``: accuracy, MCC and AUROC for classification; Pearson, Spearman and MSE for regression and
tracks (tracks: over every real position).

A checkpoint of this module holds the backbone's config (``backbone_config``, plain types), so it loads without
the pre-trained model it started from, and a classifier's class names in output order (``class_names``, from
the data at its first fit): they become the model config's ``id2label`` (kept by ``genolong export``), and later
runs on that checkpoint (``test``, ``predict``, resumed fits) encode their labels in that order, not in the order
their own files would give.
"""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import torch
import torchmetrics as tm

from genolong.data.hparams import with_plain_paths
from genolong.errors import InconsistentDataError, UsageError
from genolong.tokenizers.factory import check_same_tokenizer
from genolong.training.optim import configure_adamw, scheduled_steps

TASKS = ("classification", "regression", "tracks")


class SequenceTaskModule(L.LightningModule):
    """Fine-tune a genolong model on labelled sequences.

    Args:
        task: ``classification``, ``regression`` or ``tracks`` (per-position regression).
        num_labels: classes (classification), outputs (regression) or tracks.
        pretrained: a genolong .ckpt or save_pretrained directory whose backbone is fine-tuned.
        preset, model_overrides: the backbone when there is no ``pretrained`` (and overrides either way).
        tokenizer: tokenizer spec; must match the data module's (and the pre-trained model's).
        freeze_backbone: train the head only.
        pooling: ``mean`` or ``last`` (sequence tasks).
        lr, weight_decay, betas, warmup_steps, min_lr_ratio: AdamW with warmup and cosine decay.
        compile: ``torch.compile`` the model (True: the default inductor backend, or a backend name).
        backbone_config, class_names: set when saving; not user options.
    """

    def __init__(self, task: str = "classification", num_labels: int = 2, pretrained: str | None = None,
                 preset: str = "tiny-hyena", model_overrides: dict[str, Any] | None = None,
                 tokenizer: str = "nucleotide", freeze_backbone: bool = False, pooling: str = "mean",
                 lr: float = 1e-3, weight_decay: float = 0.01, betas: tuple[float, float] = (0.9, 0.999),
                 warmup_steps: int = 20, min_lr_ratio: float = 0.1, compile: bool | str = False,
                 backbone_config: dict[str, Any] | None = None,
                 class_names: list[str] | None = None):  # fmt: skip
        super().__init__()
        if task not in TASKS:
            raise UsageError(f"task must be one of {TASKS}, got {task!r}")
        if class_names is not None and len(class_names) != num_labels:
            raise UsageError(f"class_names has {len(class_names)} names for num_labels={num_labels}")
        from genolong.tokenizers.factory import build_tokenizer

        self.tokenizer = build_tokenizer(tokenizer)
        backbone = None
        if backbone_config is None:
            config, backbone = self._backbone(pretrained, preset, tokenizer)
            backbone_config = config.to_dict()
        self.save_hyperparameters()  # reads the arguments now: backbone_config as just set
        with_plain_paths(self.hparams)  # a Path given in Python is stored as a string
        self.model = _task_model(task, backbone_config, num_labels, pooling, model_overrides, class_names)
        if backbone is not None:
            self.model.model.load_state_dict(backbone.state_dict())
        if freeze_backbone:
            self.model.model.requires_grad_(False)
        if compile:
            self.model.compile(**({} if compile is True else {"backend": compile}))
        self.val_metrics, self.test_metrics = _metrics(task, num_labels), _metrics(task, num_labels)

    def _backbone(self, pretrained: str | None, preset: str, spec: str) -> tuple[Any, Any]:
        """(config, backbone GenoLongModel or None) of the pre-trained model or the preset."""
        from genolong.models import get_preset
        from genolong.tokenizers.factory import model_config_fields

        if pretrained is None:
            return get_preset(preset, **model_config_fields(self.tokenizer)), None
        from genolong.pipelines.loading import load_model

        model, tokenizer, _ = load_model(pretrained, None)
        if tokenizer.get_vocab() != self.tokenizer.get_vocab():
            raise InconsistentDataError(f"the pre-trained model's tokenizer differs from {spec!r}",
                                        path=pretrained, hint="set model.tokenizer to the model's tokenizer")
        return copy.deepcopy(model.config), model.model

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A fit resumed in Python (the module built anew, its classes taken from the data) must see the
        checkpoint's classes in the checkpoint's order."""
        saved = checkpoint.get("hyper_parameters", {}).get("class_names")
        if saved and self.hparams.class_names and list(saved) != list(self.hparams.class_names):
            raise InconsistentDataError(f"the checkpoint's outputs are the classes {list(saved)} (in that order) "
                                        f"but this run's are {list(self.hparams.class_names)}",
                                        hint="give the data module classes=" + repr(list(saved)))  # fmt: skip

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def predictions(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities (classification) or values; (B, C), (B,) / (B, K), or (B, T, K)."""
        if self.hparams.task == "classification":
            return logits.softmax(-1)
        return logits.squeeze(-1) if self.hparams.task == "regression" and logits.shape[-1] == 1 else logits

    def setup(self, stage: str) -> None:
        data = getattr(self.trainer, "datamodule", None)
        if data is None:
            return
        check_same_tokenizer(data.tokenizer, data.hparams.tokenizer, self.tokenizer, self.hparams.tokenizer)
        if data.hparams.task != self.hparams.task:
            raise UsageError(f"the model's task is {self.hparams.task} but the data's is {data.hparams.task}")
        trained_on = self.hparams.class_names
        if trained_on:  # labels as the model's classes, in its output order
            data.adopt_classes(trained_on)
        data.setup(stage)
        if self.hparams.task != "classification":
            return
        if len(data.classes) != self.hparams.num_labels:
            raise InconsistentDataError(f"the data have {len(data.classes)} classes {data.classes} but the model "
                                        f"num_labels={self.hparams.num_labels}", hint="set model.num_labels")
        if trained_on and list(trained_on) != list(data.classes):
            raise InconsistentDataError(f"the model's outputs are the classes {list(trained_on)} (in that order) "
                                        f"but data.classes is {data.classes}", hint="leave data.classes out")
        if not trained_on:  # first fit: the data name the outputs (saved with the hyper-parameters)
            self.hparams.class_names = list(data.classes)
            _name_outputs(self.model.config, data.classes)

    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
        return out.loss, out.logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self._step(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.predictions(self(batch["input_ids"], batch["attention_mask"]))

    def _evaluate(self, batch: dict[str, torch.Tensor], split: str, metrics: tm.MetricCollection) -> None:
        loss, logits = self._step(batch)
        predictions, target = self.predictions(logits), batch["labels"]
        if self.hparams.task == "classification" and self.hparams.num_labels == 2:
            predictions = predictions[:, 1]  # P(class 1): binary metrics
        if self.hparams.task == "tracks":
            real = batch["attention_mask"].bool()  # (B, T): padding never counts
            predictions, target = predictions[real].flatten(), target[real].flatten()
        metrics.update(predictions.float(), target)
        self.log(f"{split}/loss", loss, prog_bar=split == "val", batch_size=len(batch["input_ids"]))
        self.log_dict({f"{split}/{k}": v for k, v in metrics.items()}, batch_size=len(batch["input_ids"]))

    def configure_optimizers(self) -> dict:
        hp = self.hparams
        return configure_adamw(self.model, hp.lr, hp.weight_decay, tuple(hp.betas), hp.warmup_steps,
                               scheduled_steps(self.trainer), hp.min_lr_ratio)  # fmt: skip


def _task_model(task: str, backbone_config: dict[str, Any], num_labels: int, pooling: str,
                overrides: dict[str, Any] | None, class_names: list[str] | None) -> Any:  # fmt: skip
    from genolong.models import GenoLongConfig, GenoLongForSequenceClassification, GenoLongForTrackPrediction

    fields = {k: v for k, v in backbone_config.items() if k not in ("architectures", "transformers_version")}
    fields |= dict(overrides or {})
    if task == "tracks":
        return GenoLongForTrackPrediction(GenoLongConfig(**fields | {"num_tracks": num_labels}))
    problem = "single_label_classification" if task == "classification" else "regression"
    config = GenoLongConfig(**fields | {"num_labels": num_labels, "problem_type": problem, "pooling": pooling})
    if class_names:
        _name_outputs(config, class_names)
    return GenoLongForSequenceClassification(config)


def _name_outputs(config: Any, class_names: list[str]) -> None:
    """Name a classifier's outputs (transformers' id2label / label2id) by its classes."""
    config.id2label = dict(enumerate(str(name) for name in class_names))
    config.label2id = {name: i for i, name in config.id2label.items()}


def _metrics(task: str, n: int) -> tm.MetricCollection:
    if task == "classification":
        kind = {"task": "binary"} if n == 2 else {"task": "multiclass", "num_classes": n}
        return tm.MetricCollection({"accuracy": tm.Accuracy(**kind), "mcc": tm.MatthewsCorrCoef(**kind),
                                    "auroc": tm.AUROC(**kind)})  # fmt: skip
    outputs = {} if task == "tracks" or n == 1 else {"num_outputs": n}
    return tm.MetricCollection({"pearson": tm.PearsonCorrCoef(**outputs), "spearman": tm.SpearmanCorrCoef(**outputs),
                                "mse": tm.MeanSquaredError(**outputs)})  # fmt: skip
