"""The gated MLP (SwiGLU) that follows the token mixer in a block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GatedMLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)), hidden width `hidden` (rounded up to a multiple of 8)."""

    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        hidden = -(-hidden // 8) * 8
        self.up = nn.Linear(d_model, 2 * hidden, bias=False)  # gate and value in one matmul
        self.down = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.up(x).chunk(2, dim=-1)  # (B, L, hidden) each
        return self.down(F.silu(gate) * value)  # (B, L, D)
