"""Fast short convolution: one depthwise ``F.conv1d`` over the left-padded input, float32 inside.

This is the fast path on CPU and on GPUs without Triton (oneDNN / cuDNN depthwise kernels); there is nothing to
chunk for W <= 8. The backward is written out (`_DepthwiseCausalConv`) because the library's depthwise
convolution backward is slow on CPU (oneDNN, 2 cores: ~13x its forward, half of that with the forward
convolutions and W reductions below):

    grad_x = the same depthwise convolution of grad_y padded on the right, taps reversed (a correlation)
    grad_w[d, j] = sum over (b, t) of grad_y[b, d, t] * x_padded[b, d, t + j]
    grad_bias[d] = sum over (b, t) of grad_y[b, d, t]

Once differentiable: gradients of gradients (``create_graph=True``) are refused by autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from genolong.ops._precision import autocast_off, upcast


@autocast_off
def short_conv_conv1d(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Causal depthwise short convolution. x (B, D, L), w (D, W), bias (D,) -> (B, D, L), x's dtype."""
    bf = upcast(bias) if bias is not None else None  # (D,)
    return _DepthwiseCausalConv.apply(upcast(x), upcast(w), bf).to(x.dtype)


class _DepthwiseCausalConv(torch.autograd.Function):
    """y = causal depthwise conv of x (B, D, L) with w (D, W) plus bias (D,) or None; float32 (or float64)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        D, W = w.shape
        x_padded = F.pad(x, (W - 1, 0))  # (B, D, L + W - 1): zeros before the sequence start
        ctx.save_for_backward(x_padded, w)
        ctx.has_bias = bias is not None
        return F.conv1d(x_padded, w.unsqueeze(1), bias, groups=D)  # (B, D, L)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: torch.Tensor):
        x_padded, w = ctx.saved_tensors
        D, W = w.shape
        L = grad_y.shape[2]
        grad_x = grad_w = grad_bias = None
        with torch.autocast(grad_y.device.type, enabled=False):  # float32 inside, as the forward
            if ctx.needs_input_grad[0]:
                grad_x = F.conv1d(F.pad(grad_y, (0, W - 1)), w.flip(-1).unsqueeze(1), groups=D)  # (B, D, L)
            if ctx.needs_input_grad[1]:
                grad_w = torch.stack([(grad_y * x_padded[:, :, j : j + L]).sum((0, 2)) for j in range(W)], dim=1)
            if ctx.has_bias and ctx.needs_input_grad[2]:
                grad_bias = grad_y.sum((0, 2))  # (D,)
        return grad_x, grad_w, grad_bias
