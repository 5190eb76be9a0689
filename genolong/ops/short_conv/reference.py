"""Reference short convolution: the causal depthwise conv, written as an explicit sum over taps.

    y[b, d, t] = sum_{j=0..W-1} w[d, j] * x[b, d, t - (W-1) + j]  +  bias[d],   x = 0 before t = 0

w has the layout of a depthwise ``nn.Conv1d(D, D, W, groups=D)`` weight (squeezed to (D, W)) padded W-1 on the
left, as causal-conv1d uses: the last tap w[:, W-1] multiplies the current position.
"""

from __future__ import annotations

import torch

from genolong.ops._precision import autocast_off, upcast


@autocast_off
def short_conv_reference(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Causal depthwise short convolution, tap by tap. x (B, D, L), w (D, W), bias (D,) -> (B, D, L)."""
    L = x.shape[-1]
    W = w.shape[-1]
    xf = upcast(x)  # (B, D, L)
    wf = upcast(w)  # (D, W)
    y = torch.zeros_like(xf)  # (B, D, L)
    for j in range(W):
        lag = W - 1 - j  # tap j reads x[t - lag]
        if lag < L:
            y[..., lag:] += wf[:, j, None] * xf[..., : L - lag]  # (B, D, L - lag)
    if bias is not None:
        y = y + upcast(bias)[:, None]  # (B, D, L)
    return y.to(x.dtype)
