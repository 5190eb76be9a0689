"""Fast short convolution: one depthwise ``F.conv1d`` over the left-padded input, float32 inside.

This is already the fast path on CPU and on GPUs without Triton (oneDNN / cuDNN depthwise kernels); there is
nothing to chunk for W <= 8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genolong.ops._precision import autocast_off, upcast


@autocast_off
def short_conv_conv1d(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Causal depthwise short convolution. x (B, D, L), w (D, W), bias (D,) -> (B, D, L), x's dtype."""
    D, W = w.shape
    xf = F.pad(upcast(x), (W - 1, 0))  # (B, D, L + W - 1): zeros before the sequence start
    bf = upcast(bias) if bias is not None else None  # (D,)
    y = F.conv1d(xf, upcast(w).unsqueeze(1), bf, groups=D)  # (B, D, L)
    return y.to(x.dtype)
