"""Checkpoints loaded safely: tensors and plain containers only (``torch.load(weights_only=True)``).

A checkpoint that needs arbitrary unpickling is refused with :class:`genolong.errors.UnsafeCheckpointError`
(exit code 8) rather than executed. Saving goes through Lightning's own writer, which writes a temporary file
and moves it into place, so an interrupted save never destroys the previous checkpoint.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from genolong.errors import InputMissingError, MalformedInputError, UnsafeCheckpointError


def load_checkpoint_safely(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with genolong errors for missing, corrupt or unsafe files."""
    if not os.path.exists(path):
        raise InputMissingError("no such checkpoint", path=path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnsafeCheckpointError(
            f"refused: the checkpoint holds objects that are not plain data ({first_line})",
            path=path,
            hint="only load checkpoints you trust; re-save it as plain tensors and types",
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise MalformedInputError(f"not a readable checkpoint ({error})", path=path) from error


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with loading restricted to plain data."""

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint_safely(path, map_location=map_location or "cpu")
