"""The xLSTM mLSTM layer (matrix memory with exponential gating), computed by genolong.ops.mlstm.

    x (B, L, D) --up_proj--> x_m, z                        (inner width E = expand * D each)
    x_c = silu(short_conv(x_m))
    q, k = q_proj(x_c), k_proj(x_c);  v = v_proj(x_m)      (H heads of E / H channels; dense, or
                                                            block-diagonal as in xLSTM when qkv_block > 0)
    i_pre, f_pre = igate(q, k, v), fgate(q, k, v)           (one scalar per head and position)
    h = mlstm(q, k, v, i_pre, f_pre)                        (the stabilized recurrence of ops.mlstm)
    h = multihead_norm(h) + skip * x_c
    out = down_proj(h * silu(z))

Decoding keeps a constant-size state: the short-conv tail and (C, n, m) of the memory; one new token is one
step of the recurrence, written out in `_step`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genolong.layers.conv import short_conv_with_state
from genolong.layers.norm import MultiHeadNorm
from genolong.ops import mlstm


class MLSTMLayer(nn.Module):
    """mLSTM mixer (causal, includes its own up- and down-projection). Maps (B, L, D) -> (B, L, D)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int = 4,
        expand: int = 2,
        conv_size: int = 4,
        chunk_size: int = 64,
        qkv_block: int = 0,
        backend: str = "auto",
    ):
        super().__init__()
        self.d_inner = expand * d_model
        self.n_heads, self.head_dim = n_heads, self.d_inner // n_heads
        self.chunk_size, self.backend = chunk_size, backend
        self.up_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)  # x_m and the output gate z
        self.conv_w = nn.Parameter(torch.empty(self.d_inner, conv_size))  # (E, W)
        self.conv_b = nn.Parameter(torch.empty(self.d_inner))  # (E,)
        self.q_proj, self.k_proj, self.v_proj = (_projection(self.d_inner, qkv_block) for _ in range(3))
        self.igate = nn.Linear(3 * self.d_inner, n_heads)  # input gate pre-activation from (q, k, v)
        self.fgate = nn.Linear(3 * self.d_inner, n_heads)  # forget gate pre-activation from (q, k, v)
        self.norm = MultiHeadNorm(n_heads, self.head_dim)
        self.skip = nn.Parameter(torch.ones(self.d_inner))  # (E,) learnable skip from the conv branch
        self.down_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.conv_w.shape[1])
        nn.init.uniform_(self.conv_w, -bound, bound)
        nn.init.uniform_(self.conv_b, -bound, bound)
        # As in xLSTM: gates start from their biases; forget gates open (sigmoid(3..6) ~ 0.95..0.998).
        nn.init.zeros_(self.igate.weight)
        nn.init.normal_(self.igate.bias, std=0.1)
        nn.init.zeros_(self.fgate.weight)
        with torch.no_grad():
            self.fgate.bias.copy_(torch.linspace(3.0, 6.0, self.n_heads, device=self.fgate.bias.device))
        nn.init.ones_(self.skip)
        self.norm.reset_parameters()

    def forward(
        self, x: torch.Tensor, state: dict | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, L, D) -> (B, L, D). `state` (decoding): "tail" (B, E, W-1) and "mem" = (C, n, m), float32.

        `mask` is unused: right padding comes after every real position, and a causal mixer only looks back.
        """
        Bt, L, _ = x.shape
        H, Dh = self.n_heads, self.head_dim
        x_m, z = self.up_proj(x).chunk(2, dim=-1)  # (B, L, E) each

        x_c = short_conv_with_state(x_m.transpose(1, 2), self.conv_w, self.conv_b, state, self.backend)
        x_c = F.silu(x_c).transpose(1, 2)  # (B, L, E)

        q, k, v = self.q_proj(x_c), self.k_proj(x_c), self.v_proj(x_m)  # (B, L, E) each
        qkv = torch.cat([q, k, v], dim=-1)  # (B, L, 3E)
        # both gates in one matmul (two, and the sum of their input gradients, cost ~6% of a CPU training step)
        weight = torch.cat([self.igate.weight, self.fgate.weight])  # (2H, 3E)
        bias = torch.cat([self.igate.bias, self.fgate.bias])  # (2H,)
        i_pre, f_pre = F.linear(qkv, weight, bias).transpose(1, 2).float().chunk(2, dim=1)  # (B, H, L) each
        q, k, v = (t.view(Bt, L, H, Dh).transpose(1, 2) for t in (q, k, v))  # (B, H, L, Dh)

        initial = state.get("mem") if state is not None else None
        if initial is not None and L == 1:
            h, final = self._step(q[:, :, 0], k[:, :, 0], v[:, :, 0], i_pre[:, :, 0], f_pre[:, :, 0], initial)
            h = h[:, :, None]  # (B, H, 1, Dh)
        else:
            h, final = mlstm(
                q,
                k,
                v,
                i_pre,
                f_pre,
                initial_state=initial,
                return_final_state=True,
                chunk_size=self.chunk_size,
                backend=self.backend,
            )  # (B, H, L, Dh), (C, n, m)
        if state is not None:
            state["mem"] = final
        h = self.norm(h.transpose(1, 2)) + self.skip * x_c  # (B, L, E)
        return self.down_proj(h * F.silu(z))  # (B, L, D)

    @staticmethod
    def _step(q, k, v, i_pre, f_pre, mem):
        """One step of the stabilized mLSTM recurrence. q/k/v (B, H, Dh), gates (B, H), mem = (C, n, m)."""
        C, n, m = mem  # (B, H, Dv, Dk), (B, H, Dk), (B, H), float32
        dtype = v.dtype
        q, k, v = q.float(), k.float() / math.sqrt(k.shape[-1]), v.float()
        log_f = F.logsigmoid(f_pre)  # (B, H)
        m_new = torch.maximum(log_f + m, i_pre)
        i = torch.exp(i_pre - m_new)[:, :, None]  # (B, H, 1)
        f = torch.exp(log_f + m - m_new)[:, :, None]  # (B, H, 1)
        C = f[..., None] * C + i[..., None] * v[:, :, :, None] * k[:, :, None, :]  # (B, H, Dv, Dk)
        n = f * n + i * k  # (B, H, Dk)
        denom = torch.maximum((n * q).sum(-1).abs(), torch.exp(-m_new))[:, :, None]  # (B, H, 1)
        h = (C @ q[:, :, :, None]).squeeze(-1) / denom  # (B, H, Dv)
        return h.to(dtype), (C, n, m_new)


class BlockDiagonalLinear(nn.Module):
    """y = x W with W block-diagonal (blocks of `block` x `block`, no bias): xLSTM's cheap q/k/v projection,
    width / block times fewer weights and multiplies than a dense one. Maps (..., width) -> (..., width)."""

    def __init__(self, width: int, block: int):
        super().__init__()
        self.block = block
        self.weight = nn.Parameter(torch.empty(width // block, block, block))  # (n, in, out)
        nn.init.uniform_(self.weight, -(block**-0.5), block**-0.5)  # as nn.Linear with fan_in = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, block, _ = self.weight.shape
        y = torch.einsum("...ni,nio->...no", x.unflatten(-1, (n, block)), self.weight)  # (..., n, block)
        return y.flatten(-2)  # (..., width)


def _projection(width: int, block: int) -> nn.Module:
    """The q/k/v projection: dense for block == 0, block-diagonal otherwise."""
    return nn.Linear(width, width, bias=False) if block == 0 else BlockDiagonalLinear(width, block)
