"""Multi-head attention with rotary positions and grouped-query heads, causal or bidirectional.

RoPE is computed and applied in float32 whatever the model dtype (bf16 angles at position 10^5 are useless).
The scores go through `F.scaled_dot_product_attention`. For decoding, a per-layer `state` dict keeps the
rotated keys and the values of every past position (the only mixer whose state grows with the context).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rope_angles(positions: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, float32, each (L, head_dim / 2), for integer positions (L,)."""
    inv_freq = base ** (
        -torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim
    )
    angles = positions.float()[:, None] * inv_freq[None, :]  # (L, head_dim / 2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :d/2], x[..., d/2:]) of x (B, H, L, d) by the angles; float32 inside."""
    x1, x2 = x.float().chunk(2, dim=-1)  # (B, H, L, d / 2) each
    rotated = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.to(x.dtype)


class Attention(nn.Module):
    """Softmax attention over the whole (past) sequence; the only mixer with quadratic cost."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int | None = None,
        causal: bool = True,
        rope_base: float = 1e4,
    ):
        super().__init__()
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads or n_heads
        self.head_dim = d_model // n_heads
        self.causal = causal
        self.rope_base = rope_base
        self.q_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=False)
        self.kv_proj = nn.Linear(d_model, 2 * self.n_kv_heads * self.head_dim, bias=False)
        self.out_proj = nn.Linear(n_heads * self.head_dim, d_model, bias=False)

    def forward(
        self, x: torch.Tensor, state: dict | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, L, D) -> (B, L, D).

        state: decoding cache of this layer (keys "k", "v": (B, Hkv, T_past, hd)); read and extended in place.
        mask: (B, T_past + L), 1 for real tokens and 0 for padding; padded keys are never attended to.
        """
        B, L, _ = x.shape
        q = self.q_proj(x).view(B, L, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, L, hd)
        kv = self.kv_proj(x).view(B, L, 2, self.n_kv_heads, self.head_dim)  # (B, L, 2, Hkv, hd)
        k, v = kv.permute(2, 0, 3, 1, 4)  # (B, Hkv, L, hd) each

        past = state["k"].shape[2] if state is not None and "k" in state else 0
        positions = torch.arange(past, past + L, device=x.device)  # (L,)
        cos, sin = rope_angles(positions, self.head_dim, self.rope_base)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if state is not None:
            if past:
                k, v = torch.cat([state["k"], k], dim=2), torch.cat([state["v"], v], dim=2)  # (B, Hkv, T, hd)
            state["k"], state["v"] = k, v
        T = past + L

        repeat = self.n_heads // self.n_kv_heads
        k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)  # (B, H, T, hd)

        allowed = None  # (B or 1, 1, L, T) boolean, True = may attend
        if mask is not None or (self.causal and past and L > 1):
            q_pos = positions[:, None]  # (L, 1)
            k_pos = torch.arange(T, device=x.device)[None, :]  # (1, T)
            allowed = (k_pos <= q_pos) if self.causal else torch.ones(L, T, dtype=torch.bool, device=x.device)
            allowed = allowed[None, None]
            if mask is not None:
                allowed = allowed & mask[:, None, None, -T:].bool()
            # A query always sees itself: no all-masked rows (NaN) for padded queries.
            allowed = allowed | (k_pos == q_pos)
        is_causal = allowed is None and self.causal and L > 1
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, is_causal=is_causal)  # (B, H, L, hd)
        return self.out_proj(y.transpose(1, 2).reshape(B, L, -1))
