"""Load a trained model and its tokenizer from a Lightning checkpoint or a ``save_pretrained`` directory.

Lightning checkpoints are read with ``torch.load(weights_only=True)`` (plain data only; a pickle that holds
code is refused with exit code 8) and rebuilt from the hyper-parameters the training module stored as plain types.
A file that is not a torch checkpoint at all (text, a Git LFS pointer, a saved web page), a checkpoint that does
not hold a dict, and a broken ``save_pretrained`` directory (missing or truncated weights, invalid config.json)
are malformed input (exit 4). The options the commands share are checked here too (:func:`check_device`,
:func:`parse_dtype`, :func:`check_batch_size`, :func:`output_suffix`: exit 2 with a hint).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from genolong.errors import (
    GenoLongError,
    InconsistentDataError,
    InputMissingError,
    MalformedInputError,
    UsageError,
)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "half": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}  # fmt: skip
DEVICE_HINT = "use cpu, cuda, cuda:N or mps"


def check_device(device: str) -> str:
    """``device`` unchanged if torch knows it and this machine has it; else a UsageError (exit 2) with a hint."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise UsageError(f"--device {device!r} is not a torch device", hint=DEVICE_HINT) from error
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"--device {device}: no CUDA GPU is available on this machine", hint="use --device cpu")
        if parsed.index is not None and parsed.index >= count:
            raise UsageError(f"--device {device}: this machine has {count} CUDA GPU(s)",
                             hint=f"use cuda:0..cuda:{count - 1}")  # fmt: skip
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {device}: MPS is not available on this machine", hint="use --device cpu")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {device!r} is not supported", hint=DEVICE_HINT)
    return device


def check_batch_size(batch_size: int) -> None:
    """UsageError (exit 2) unless ``batch_size`` is a positive number of items per forward pass."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be positive, got {batch_size}")


def output_suffix(path: str | os.PathLike, suffixes: tuple[str, ...]) -> str:
    """The longest of ``suffixes`` that ``path`` ends with; a UsageError (exit 2) naming them if none does."""
    name = os.fspath(path)
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise UsageError(f"unsupported output format; supported: {', '.join(suffixes)}", path=path)


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """The torch dtype named by ``--dtype`` (float32/fp32, float16/fp16/half, bfloat16/bf16); None stays None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype.lower() not in DTYPES:
        raise UsageError(f"--dtype {dtype!r} is not supported", hint=f"use one of {', '.join(DTYPES)}")
    return DTYPES[dtype.lower()]


def load_model(path: str | os.PathLike, kind: str | None = "causal", device: str = "cpu") -> tuple[Any, Any, dict]:
    """(model in eval mode, tokenizer, metadata) from a checkpoint file or a pretrained directory.

    ``kind`` is ``causal``, ``masked`` or ``classification`` (None: whatever the checkpoint or directory holds);
    metadata holds the training module's and data module's hyper-parameters (``{"module": ..., "data": ...}``)
    of a Lightning checkpoint or of a ``genolong export`` of one; {} for other directories.
    """
    check_device(device)
    path = Path(path)
    if not path.exists():
        raise InputMissingError(
            "no such model (expected a .ckpt file or a save_pretrained directory)", path=path
        )
    try:
        if path.is_dir():
            model, tokenizer, meta = _from_pretrained(path, kind)
        else:
            model, tokenizer, meta = _from_lightning_checkpoint(path, kind)
    except GenoLongError as error:
        if error.path is None:  # e.g. a model class refusing the stored config: say which model
            raise type(error)(error.message, path=path, line=error.line, record=error.record,
                              hint=error.hint) from error  # fmt: skip
        raise
    return model.to(device).eval(), tokenizer, meta


_KINDS = {"GenoLongForCausalLM": "causal", "GenoLongForMaskedLM": "masked",
          "GenoLongForSequenceClassification": "classification"}  # fmt: skip


def _from_pretrained(path: Path, kind: str | None) -> tuple[Any, Any, dict]:
    import transformers

    import genolong.models  # noqa: F401  (registers the Auto* classes)

    auto = {
        "causal": transformers.AutoModelForCausalLM,
        "masked": transformers.AutoModelForMaskedLM,
        "classification": transformers.AutoModelForSequenceClassification,
    }
    config = _read_config(path)
    if kind is None:  # whatever the directory holds, as its config names it
        architectures = config.get("architectures") or [""]
        kind = _KINDS.get(architectures[0], "causal")
    if kind not in auto:
        raise UsageError(f"model kind must be one of {sorted(auto)}, got {kind!r}")
    if not any((path / name).exists() for name in _WEIGHT_FILES):
        raise InputMissingError("no model.safetensors: the directory holds no weights", path=path,
                                hint="export the checkpoint again with `genolong export`")  # fmt: skip
    return _load_pretrained(auto[kind], path), _load_saved_tokenizer(path), _read_training_record(path)


TRAINING_RECORD = "genolong_training.json"  # in an export: the checkpoint's module and data hyper-parameters


def _read_training_record(path: Path) -> dict:
    """The training metadata an export carries ({} for a directory written otherwise)."""
    record = path / TRAINING_RECORD
    if not record.exists():
        return {}
    try:
        return json.loads(record.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedInputError(f"unreadable training record ({error})", path=record,
                                  hint=_EXPORT_AGAIN) from error  # fmt: skip


_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")  # fmt: skip
_EXPORT_AGAIN = "the directory is damaged: export the checkpoint again with `genolong export`"


def _read_config(path: Path) -> dict:
    """config.json of a save_pretrained directory, checked to be a genolong model's."""
    config_file = path / "config.json"
    if not config_file.exists():
        raise InputMissingError("not a save_pretrained directory: config.json is missing", path=path)
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as error:
        raise MalformedInputError(f"invalid JSON ({error.msg}, column {error.colno})", path=config_file,
                                  line=error.lineno, hint=_EXPORT_AGAIN) from error  # fmt: skip
    except (OSError, UnicodeDecodeError) as error:
        raise InputMissingError(f"cannot read the file ({error})", path=config_file) from error
    if not isinstance(config, dict) or config.get("model_type") != "genolong":
        found = config.get("model_type") if isinstance(config, dict) else type(config).__name__
        raise MalformedInputError(f"not a genolong model config (model_type {found!r}, expected 'genolong')",
                                  path=config_file, hint="give a directory written by `genolong export`")  # fmt: skip
    return config


def _load_pretrained(auto_class: Any, path: Path) -> Any:
    from safetensors import SafetensorError

    try:
        return auto_class.from_pretrained(path)
    except (SafetensorError, OSError, ValueError, TypeError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MalformedInputError(f"cannot load the model ({detail})", path=path, hint=_EXPORT_AGAIN) from error
    except RuntimeError as error:  # weights whose shapes disagree with config.json
        detail = str(error).strip().splitlines()[0]
        raise InconsistentDataError(f"the weights do not fit config.json ({detail})", path=path,
                                    hint=_EXPORT_AGAIN) from error  # fmt: skip


def _load_saved_tokenizer(path: Path) -> Any:
    from genolong.tokenizers.factory import load_tokenizer

    try:
        return load_tokenizer(path)
    except (OSError, ValueError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise MalformedInputError(f"cannot load the tokenizer ({error})", path=path, hint=_EXPORT_AGAIN) from error


def _from_lightning_checkpoint(path: Path, kind: str) -> tuple[Any, Any, dict]:
    from genolong.training.checkpoints import load_checkpoint_safely
    from genolong.training.lm import LanguageModelModule

    checkpoint = load_checkpoint_safely(path)
    hparams = checkpoint.get("hyper_parameters", {})
    if not isinstance(hparams, dict):
        raise MalformedInputError("not a genolong checkpoint: hyper_parameters is not a dict", path=path)
    hparams = dict(hparams)
    if "backbone_config" in hparams:  # a fine-tuned task model (genolong.training.tasks)
        return _task_module(path, checkpoint, hparams, kind)
    if "preset" not in hparams:
        raise MalformedInputError("this checkpoint was not written by a genolong training module", path=path)
    objective = hparams.get("objective", "causal")
    if kind is not None and objective != kind:
        raise UsageError(
            f"this checkpoint holds a {objective} language model; a {kind} one is needed", path=path
        )
    module = LanguageModelModule(**{k: v for k, v in hparams.items() if not k.startswith("_") and k != "compile"})
    _load_state(module, checkpoint, path)
    meta = {"module": hparams, "data": dict(checkpoint.get("datamodule_hyper_parameters", {}))}
    return module.model, module.tokenizer, meta


def _load_state(module: Any, checkpoint: dict, path: Path) -> None:
    """The checkpoint's weights into ``module``, with genolong errors for missing or mismatched weights."""
    if not isinstance(checkpoint.get("state_dict"), dict):
        from genolong.training.checkpoints import CHECKPOINT_HINT

        raise MalformedInputError("the checkpoint has no state_dict (weights)", path=path, hint=CHECKPOINT_HINT)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        detail = str(error).strip().splitlines()[0]
        raise InconsistentDataError(f"the weights do not fit the stored hyper-parameters ({detail})",
                                    path=path) from error  # fmt: skip


def _task_module(path: Path, checkpoint: dict, hparams: dict, kind: str | None) -> tuple[Any, Any, dict]:
    from genolong.training.tasks import SequenceTaskModule

    task = hparams.get("task")
    if kind is not None and kind != "classification":
        raise UsageError(f"this checkpoint holds a fine-tuned {task} model; a {kind} language model is needed",
                         path=path)  # fmt: skip
    arguments = {k: v for k, v in hparams.items() if not k.startswith("_") and k not in ("pretrained", "compile")}
    module = SequenceTaskModule(**arguments)  # rebuilt from backbone_config: no pre-trained model needed
    _load_state(module, checkpoint, path)
    meta = {"module": hparams, "data": dict(checkpoint.get("datamodule_hyper_parameters", {}))}
    return module.model, module.tokenizer, meta


@torch.no_grad()
def token_log_probs(model: Any, input_ids: torch.Tensor) -> torch.Tensor:
    """(B, T-1) log P(token t | tokens < t) of a causal model, in float32."""
    logits = model(input_ids=input_ids).logits.float()  # (B, T, V)
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    return logp.gather(-1, input_ids[:, 1:, None])[..., 0]


def _check_export_target(out: Path) -> None:
    """An export goes to a new or empty folder, or replaces an earlier export; never mixes with other files."""
    if out.exists() and not out.is_dir():
        raise UsageError("the export target is an existing file; give a folder", path=out)
    if out.is_dir() and any(out.iterdir()):
        try:
            earlier = json.loads((out / "config.json").read_text()).get("model_type") == "genolong"
        except (OSError, ValueError, AttributeError):
            earlier = False
        if not earlier:
            raise UsageError("the export folder is not empty and holds no earlier genolong export", path=out,
                             hint="give a new or empty folder")  # fmt: skip


def export_pretrained(checkpoint: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Write a Lightning checkpoint as a ``save_pretrained`` directory (weights, config, tokenizer), with the
    training's hyper-parameters beside them (``TRAINING_RECORD``: held-out regions, the CDS annotation of a
    codon model), so the pipelines default to the same settings for the export as for the checkpoint."""
    if Path(checkpoint).is_dir():
        raise UsageError("expected a Lightning .ckpt file, got a directory", path=checkpoint)
    out = Path(output_dir)
    _check_export_target(out)
    model, tokenizer, meta = load_model(checkpoint, kind=None)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / TRAINING_RECORD).write_text(json.dumps(meta, indent=1, default=str) + "\n")
    return out


def training_annotation(tokenizer: Any, annotation: str | os.PathLike | Any, meta: dict) -> Any:
    """``annotation``, or for a codon model given none, the CDS annotation it was trained with (None if it
    records none; InputMissingError if that file is not found from here)."""
    from genolong.tokenizers.factory import takes_cds

    if annotation is not None or not takes_cds(tokenizer):
        return annotation
    trained = meta.get("data", {}).get("annotation")
    if trained is not None and not os.path.exists(trained):
        raise InputMissingError("the CDS annotation the model was trained with is not found from here",
                                path=trained, hint="give it with --annotation")  # fmt: skip
    return trained
