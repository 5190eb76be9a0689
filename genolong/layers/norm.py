"""Normalisation layers: RMSNorm, the gated RMSNorm of Mamba2 and the per-head norm of mLSTM.

All of them compute their statistics in float32 whatever the input dtype and return the input dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """y = x / rms(x) * weight, over the last dimension."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # (D,)

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()  # (..., D)
        y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


class GatedRMSNorm(nn.Module):
    """Mamba2's output norm: rmsnorm(y * silu(z)), statistics per group of `group_size` channels."""

    def __init__(self, dim: int, group_size: int | None = None, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.group_size = group_size or dim
        self.weight = nn.Parameter(torch.ones(dim))  # (D,)

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = y.float() * F.silu(z.float())  # (..., D)
        xg = x.unflatten(-1, (-1, self.group_size))  # (..., D / group, group)
        xg = xg * torch.rsqrt(xg.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xg.flatten(-2) * self.weight.float()).to(y.dtype)


class MultiHeadNorm(nn.Module):
    """Layer norm of each head separately (xLSTM's per-head group norm), with one weight per channel."""

    def __init__(self, n_heads: int, head_dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_heads * head_dim))  # (H * Dh,)

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, L, H, Dh) -> (B, L, H * Dh)."""
        x = F.layer_norm(h.float(), h.shape[-1:], eps=self.eps)  # (B, L, H, Dh)
        return (x.flatten(-2) * self.weight.float()).to(h.dtype)
