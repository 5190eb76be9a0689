"""The short causal convolution of every mixer, continued across decoding calls."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genolong.ops import short_conv


def short_conv_with_state(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, state: dict | None, backend: str
) -> torch.Tensor:
    """ops.short_conv over x (B, C, L), taps w (C, W), continuing from `state["tail"]` when decoding.

    The tail holds the last W-1 inputs seen so far, zeros standing for those before the sequence start (as in
    the convolution's own causal padding); prepending it gives the new positions their true history, and the
    outputs computed for the tail are dropped.
    """
    L, W = x.shape[2], w.shape[1]
    if state is not None and "tail" in state:
        x = torch.cat([state["tail"], x], dim=2)  # (B, C, W - 1 + L)
    if state is not None:
        seen = F.pad(x, (max(W - 1 - x.shape[2], 0), 0))  # (B, C, >= W - 1): a first call may bring < W - 1
        state["tail"] = seen[:, :, seen.shape[2] - (W - 1) :]  # (B, C, W - 1); empty when W == 1
    return short_conv(x, w, b, backend=backend)[:, :, -L:]  # (B, C, L)
