"""``short_conv``: causal depthwise convolution with a short kernel (W <= 8), with backend dispatch."""

from __future__ import annotations

import torch

from genolong.errors import UsageError
from genolong.ops._backend import Backend, select_backend
from genolong.ops._validate import expect_ndim, expect_shape
from genolong.ops.short_conv.conv1d import short_conv_conv1d
from genolong.ops.short_conv.reference import short_conv_reference

__all__ = ["MAX_WIDTH", "short_conv", "short_conv_conv1d", "short_conv_reference"]

MAX_WIDTH = 8


def short_conv(
    x: torch.Tensor,
    w: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    backend: Backend = "auto",
) -> torch.Tensor:
    """Causal depthwise conv ``y[b,d,t] = sum_j w[d,j]·x[b,d,t-(W-1)+j] + bias[d]`` (x = 0 before t = 0).

    x (B, D, L), w (D, W) with W <= 8 in the layout of a left-padded depthwise nn.Conv1d weight
    (``conv.weight[:, 0, :]``), bias (D,) or None. Returns (B, D, L) in x's dtype;
    accumulates in float32 (float64 inputs stay float64).
    backend: "auto" | "torch" (F.conv1d) | "triton" | "reference" (explicit sum); see genolong.ops._backend.
    """
    expect_ndim("short_conv", "x", x, 3, "(B, D, L)")
    expect_ndim("short_conv", "w", w, 2, "(D, W)")
    D = x.shape[1]
    if w.shape[0] != D or not 1 <= w.shape[1] <= MAX_WIDTH:
        raise UsageError(
            f"short_conv: w has shape {tuple(w.shape)}, expected (D={D}, W) with 1 <= W <= {MAX_WIDTH}"
        )
    expect_shape("short_conv", "bias", bias, (D,))
    chosen = select_backend("short_conv", backend, x, w, bias)
    if chosen == "triton":  # imported here: Triton loads only when asked for
        from genolong.ops.short_conv.triton import short_conv_triton

        return short_conv_triton(x, w, bias)
    if chosen == "reference":
        return short_conv_reference(x, w, bias)
    return short_conv_conv1d(x, w, bias)
