"""Load a trained model and its tokenizer from a Lightning checkpoint or a ``save_pretrained`` directory.

Lightning checkpoints are read with ``torch.load(weights_only=True)`` (plain data only; anything else is
refused with exit code 8) and rebuilt from the hyper-parameters the training module stored as plain types.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from genolong.errors import InputMissingError, UsageError


def load_model(path: str | os.PathLike, kind: str | None = "causal", device: str = "cpu") -> tuple[Any, Any, dict]:
    """(model in eval mode, tokenizer, metadata) from a checkpoint file or a pretrained directory.

    ``kind`` is ``causal``, ``masked`` or ``classification`` (None: whatever the checkpoint or directory holds);
    metadata holds the training module's and data module's hyper-parameters when the source is a Lightning
    checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise InputMissingError(
            "no such model (expected a .ckpt file or a save_pretrained directory)", path=path
        )
    if path.is_dir():
        model, tokenizer, meta = _from_pretrained(path, kind)
    else:
        model, tokenizer, meta = _from_lightning_checkpoint(path, kind)
    return model.to(device).eval(), tokenizer, meta


_KINDS = {"GenoLongForCausalLM": "causal", "GenoLongForMaskedLM": "masked",
          "GenoLongForSequenceClassification": "classification"}  # fmt: skip


def _from_pretrained(path: Path, kind: str | None) -> tuple[Any, Any, dict]:
    import transformers

    import genolong.models  # noqa: F401  (registers the Auto* classes)
    from genolong.tokenizers.factory import load_tokenizer

    auto = {
        "causal": transformers.AutoModelForCausalLM,
        "masked": transformers.AutoModelForMaskedLM,
        "classification": transformers.AutoModelForSequenceClassification,
    }
    if not (path / "config.json").exists():
        raise InputMissingError("not a save_pretrained directory: config.json is missing", path=path)
    if kind is None:  # whatever the directory holds, as its config names it
        architectures = json.loads((path / "config.json").read_text()).get("architectures") or [""]
        kind = _KINDS.get(architectures[0], "causal")
    if kind not in auto:
        raise UsageError(f"model kind must be one of {sorted(auto)}, got {kind!r}")
    return auto[kind].from_pretrained(path), load_tokenizer(path), {}


def _from_lightning_checkpoint(path: Path, kind: str) -> tuple[Any, Any, dict]:
    from genolong.training.checkpoints import load_checkpoint_safely
    from genolong.training.lm import LanguageModelModule

    checkpoint = load_checkpoint_safely(path)
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    if "backbone_config" in hparams:  # a fine-tuned task model (genolong.training.tasks)
        return _task_module(path, checkpoint, hparams, kind)
    if "preset" not in hparams:
        raise UsageError("this checkpoint was not written by a genolong training module", path=path)
    objective = hparams.get("objective", "causal")
    if kind is not None and objective != kind:
        raise UsageError(
            f"this checkpoint holds a {objective} language model; a {kind} one is needed", path=path
        )
    module = LanguageModelModule(**{k: v for k, v in hparams.items() if not k.startswith("_") and k != "compile"})
    module.load_state_dict(checkpoint["state_dict"])
    meta = {"module": hparams, "data": dict(checkpoint.get("datamodule_hyper_parameters", {}))}
    return module.model, module.tokenizer, meta


def _task_module(path: Path, checkpoint: dict, hparams: dict, kind: str | None) -> tuple[Any, Any, dict]:
    from genolong.training.tasks import SequenceTaskModule

    task = hparams.get("task")
    if kind is not None and kind != "classification":
        raise UsageError(f"this checkpoint holds a fine-tuned {task} model; a {kind} language model is needed",
                         path=path)  # fmt: skip
    arguments = {k: v for k, v in hparams.items() if not k.startswith("_") and k not in ("pretrained", "compile")}
    module = SequenceTaskModule(**arguments)  # rebuilt from backbone_config: no pre-trained model needed
    module.load_state_dict(checkpoint["state_dict"])
    meta = {"module": hparams, "data": dict(checkpoint.get("datamodule_hyper_parameters", {}))}
    return module.model, module.tokenizer, meta


@torch.no_grad()
def token_log_probs(model: Any, input_ids: torch.Tensor) -> torch.Tensor:
    """(B, T-1) log P(token t | tokens < t) of a causal model, in float32."""
    logits = model(input_ids=input_ids).logits.float()  # (B, T, V)
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    return logp.gather(-1, input_ids[:, 1:, None])[..., 0]


def export_pretrained(checkpoint: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Write a Lightning checkpoint as a ``save_pretrained`` directory (weights, config, tokenizer)."""
    if Path(checkpoint).is_dir():
        raise UsageError("expected a Lightning .ckpt file, got a directory", path=checkpoint)
    model, tokenizer, _ = load_model(checkpoint, kind=None)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
