"""Shape and argument checks shared by the public operators; they raise UsageError naming the op."""

from __future__ import annotations

import torch

from genolong.errors import UsageError


def expect_shape(op: str, name: str, tensor: torch.Tensor | None, shape: tuple[int, ...]) -> None:
    """Raise UsageError unless ``tensor`` (when given) has exactly ``shape``."""
    if tensor is not None and tuple(tensor.shape) != tuple(shape):
        raise UsageError(f"{op}: {name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")


def expect_ndim(op: str, name: str, tensor: torch.Tensor, ndim: int, layout: str) -> None:
    """Raise UsageError unless ``tensor`` has ``ndim`` dimensions; ``layout`` names them, e.g. "(B, D, L)"."""
    if tensor.ndim != ndim:
        raise UsageError(f"{op}: {name} must be {layout}, got shape {tuple(tensor.shape)}")


def expect_chunk_size(op: str, chunk_size: int) -> None:
    """Raise UsageError unless ``chunk_size`` is a positive int."""
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise UsageError(f"{op}: chunk_size must be a positive integer, got {chunk_size!r}")
