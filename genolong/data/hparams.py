"""Hyper-parameters stored as plain types, so checkpoints load with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any


def with_plain_paths(hparams: MutableMapping[str, Any]) -> None:
    """Replace path objects among a Lightning module's saved hyper-parameters (also inside lists, tuples and dicts)
    by strings: a ``pathlib.Path`` pickled into a checkpoint would make the safe loader refuse it."""

    def plain(value: Any) -> Any:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if type(value) in (list, tuple):
            return type(value)(plain(v) for v in value)
        if type(value) is dict:
            return {k: plain(v) for k, v in value.items()}
        return value

    for key, value in hparams.items():
        hparams[key] = plain(value)
