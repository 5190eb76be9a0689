"""Compute dtypes of the ops: float32, or the input's own dtype when wider (float64); autocast kept out."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def upcast(t: torch.Tensor) -> torch.Tensor:
    """``t`` in its accumulation dtype: bf16/fp16/fp32 -> float32, float64 stays float64."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def acc_dtype(t: torch.Tensor) -> torch.dtype:
    """The accumulation dtype for inputs like ``t``."""
    return torch.promote_types(t.dtype, torch.float32)


def autocast_off(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn`` with autocast disabled on its first argument's device.

    Under ``torch.autocast`` (bf16-mixed training), matmuls and convolutions would silently drop back to bf16;
    the ops cast their inputs themselves and must accumulate in float32 whatever the surrounding context.
    """

    @functools.wraps(fn)
    def wrapped(first: torch.Tensor, *args, **kwargs) -> T:
        device_type = first.device.type
        if not torch.amp.is_autocast_available(device_type):
            return fn(first, *args, **kwargs)
        with torch.autocast(device_type, enabled=False):
            return fn(first, *args, **kwargs)

    return wrapped
