"""Checkpoints loaded safely: tensors and plain containers only (``torch.load(weights_only=True)``).

A checkpoint that needs arbitrary unpickling is refused with :class:`genolong.errors.UnsafeCheckpointError`
(exit code 8) rather than executed. Saving goes through Lightning's own writer, which writes a temporary file
and moves it into place, so an interrupted save never destroys the previous checkpoint.
"""

from __future__ import annotations

import os
import pickle
import re
import struct
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from genolong.errors import GenoLongError, InputMissingError, MalformedInputError, UnsafeCheckpointError


def load_checkpoint_safely(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` of a Lightning checkpoint, with genolong errors: missing (exit 3);
    not a checkpoint at all (text, a Git LFS pointer, a web page), truncated or corrupt, or not a dict (exit 4);
    referring to code (exit 8)."""
    if not os.path.exists(path):
        raise InputMissingError("no such checkpoint", path=path)
    if os.path.isdir(path):
        raise MalformedInputError("expected a checkpoint file, got a directory", path=path, hint=CHECKPOINT_HINT)
    _check_signature(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise _corrupt_or_unsafe(error, path) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise MalformedInputError(f"not a readable checkpoint ({error})", path=path, hint=CHECKPOINT_HINT) from error
    except (KeyError, IndexError, ValueError, TypeError, AttributeError, struct.error) as error:
        raise MalformedInputError(f"not a readable checkpoint: the file is corrupt ({type(error).__name__}: "
                                  f"{error})", path=path, hint=CHECKPOINT_HINT) from error  # fmt: skip
    if not isinstance(checkpoint, dict):
        raise MalformedInputError(f"not a Lightning checkpoint: it holds a {type(checkpoint).__name__}, not a dict",
                                  path=path, hint=CHECKPOINT_HINT)  # fmt: skip
    return checkpoint


CHECKPOINT_HINT = "give the .ckpt file written by `genolong fit`, or a save_pretrained directory"
_MAGIC = (b"PK\x03\x04", b"\x80")  # a torch zip archive, or the legacy format (a pickle)


def _check_signature(path: str | os.PathLike) -> None:
    """Refuse, as malformed, a file that is neither a torch zip archive nor a pickle (before unpickling it)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as error:
        raise InputMissingError(f"cannot read the checkpoint ({error.strerror or error})", path=path) from error
    if not head.startswith(_MAGIC):
        raise MalformedInputError(f"not a checkpoint: the file is {_describe_non_checkpoint(head)}", path=path,
                                  hint=CHECKPOINT_HINT)  # fmt: skip


def _describe_non_checkpoint(head: bytes) -> str:
    text = head.lstrip().lower()
    if not head:
        return "empty"
    if text.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the file itself (fetch it with `git lfs pull`)"
    if text.startswith(b"<"):
        return "a web page (HTML), not the file it links to (download the file itself)"
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        return "text"
    return "neither a torch zip archive nor a pickle (a malformed or truncated download?)"


def _corrupt_or_unsafe(error: pickle.UnpicklingError, path: str | os.PathLike) -> GenoLongError:
    """torch's weights-only unpickler refuses code and corrupt bytes alike: a pickle stream that breaks off or
    holds invalid opcodes ("Unsupported operand") is malformed (exit 4); one that names code (a GLOBAL) is
    refused as unsafe (exit 8), without torch's advice to load it with weights_only=False."""
    detail = str(error)
    if "Unsupported operand" in detail or ("WeightsUnpickler error" in detail and "GLOBAL" not in detail):
        found = re.search(r"Unsupported operand \d+", detail)
        reason = f" ({found.group(0)})" if found else ""
        return MalformedInputError(f"not a readable checkpoint: corrupt pickle data{reason}", path=path,
                                   hint=CHECKPOINT_HINT)
    found = re.search(r"GLOBAL ([\w.]+)", detail)
    what = f"refers to code ({found.group(1)})" if found else "holds objects that are not plain data"
    return UnsafeCheckpointError(f"refused: the checkpoint {what}, not plain data", path=path,
                                 hint="only load checkpoints you trust; re-save it as plain tensors and types")


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with loading restricted to plain data."""

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint_safely(path, map_location=map_location or "cpu")
