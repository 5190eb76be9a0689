"""The Mamba2 token mixer: a selective state-space model computed by the SSD scan (genolong.ops.ssd_scan).

    x (B, L, D) --in_proj--> z, xBC, dt
    xBC = silu(short_conv(xBC));  x, B, C = split(xBC)
    dt = softplus(dt + dt_bias);  A = -exp(A_log)
    y = ssd_scan(x, dt, A, B, C, D)  (per head: S_t = exp(dt A) S_{t-1} + dt x_t B_t^T, y_t = S_t C_t + D x)
    out = out_proj(rmsnorm(y * silu(z)))

Decoding keeps a constant-size state per layer: the last W-1 inputs of the short conv and the SSM state
(B, H, P, N). One new token is one step of the recurrence above, written out in `_step`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genolong.layers.conv import short_conv_with_state
from genolong.layers.norm import GatedRMSNorm
from genolong.ops import ssd_scan


class Mamba2Mixer(nn.Module):
    """Mamba2 (SSD) mixer, causal. Maps (B, L, D) -> (B, L, D)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        n_heads: int = 8,
        expand: int = 2,
        n_groups: int = 1,
        conv_size: int = 4,
        chunk_size: int = 256,
        backend: str = "auto",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
    ):
        super().__init__()
        self.d_inner = expand * d_model
        self.n_heads, self.head_dim = n_heads, self.d_inner // n_heads
        self.n_groups, self.d_state = n_groups, d_state
        self.chunk_size, self.backend = chunk_size, backend
        self.dt_min, self.dt_max = dt_min, dt_max
        self.conv_dim = self.d_inner + 2 * n_groups * d_state  # channels of x, B and C
        self.in_proj = nn.Linear(d_model, self.d_inner + self.conv_dim + n_heads, bias=False)  # z, xBC, dt
        self.conv_w = nn.Parameter(torch.empty(self.conv_dim, conv_size))  # (C, W) depthwise taps
        self.conv_b = nn.Parameter(torch.empty(self.conv_dim))  # (C,)
        self.dt_bias = nn.Parameter(torch.empty(n_heads))  # (H,) inverse softplus of the initial step
        self.A_log = nn.Parameter(torch.empty(n_heads))  # (H,) A = -exp(A_log)
        self.D = nn.Parameter(torch.empty(n_heads))  # (H,) skip
        self.norm = GatedRMSNorm(self.d_inner, group_size=self.d_inner // n_groups)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.conv_w.shape[1])
        nn.init.uniform_(self.conv_w, -bound, bound)
        nn.init.uniform_(self.conv_b, -bound, bound)
        # Initial steps log-spaced over [dt_min, dt_max], one per head; dt_bias is their inverse softplus.
        u = torch.linspace(0, 1, self.n_heads, device=self.dt_bias.device)
        dt = torch.exp(u * (math.log(self.dt_max) - math.log(self.dt_min)) + math.log(self.dt_min))  # (H,)
        with torch.no_grad():
            self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            self.A_log.copy_(torch.log(torch.linspace(1, 16, self.n_heads, device=self.A_log.device)))
        nn.init.ones_(self.D)
        self.norm.reset_parameters()

    def forward(
        self, x: torch.Tensor, state: dict | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, L, D) -> (B, L, D). `state` (decoding): "tail" (B, C, W-1) and "ssm" (B, H, P, N) float32.

        `mask` is unused: right padding comes after every real position, and a causal mixer only looks back.
        """
        Bt, L, _ = x.shape
        H, P, G, N = self.n_heads, self.head_dim, self.n_groups, self.d_state
        z, xBC, dt = self.in_proj(x).split([self.d_inner, self.conv_dim, H], dim=-1)  # (B, L, *)

        xBC = short_conv_with_state(xBC.transpose(1, 2), self.conv_w, self.conv_b, state, self.backend)
        xBC = F.silu(xBC).transpose(1, 2)  # (B, L, C)
        xs, B, C = xBC.split([self.d_inner, G * N, G * N], dim=-1)  # (B, L, d_inner), (B, L, G N) x2
        xs, B, C = xs.view(Bt, L, H, P), B.view(Bt, L, G, N), C.view(Bt, L, G, N)

        dt = F.softplus(dt.float() + self.dt_bias.float())  # (B, L, H), positive
        A = -torch.exp(self.A_log.float())  # (H,), negative
        initial = state.get("ssm") if state is not None else None
        if initial is not None and L == 1:
            y, final = self._step(xs[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], initial)
            y = y[:, None]  # (B, 1, H, P)
        else:
            y, final = ssd_scan(
                xs,
                dt,
                A,
                B,
                C,
                self.D,
                initial_state=initial,
                return_final_state=True,
                chunk_size=self.chunk_size,
                backend=self.backend,
            )  # (B, L, H, P), (B, H, P, N)
        if state is not None:
            state["ssm"] = final
        y = self.norm(y.reshape(Bt, L, self.d_inner), z)  # (B, L, d_inner)
        return self.out_proj(y)

    def _step(self, x, dt, A, B, C, S):
        """One step of the SSD recurrence. x (B, H, P), dt (B, H), B/C (B, G, N), S (B, H, P, N) float32."""
        per_group = self.n_heads // self.n_groups
        B = B.float().repeat_interleave(per_group, dim=1)  # (B, H, N)
        C = C.float().repeat_interleave(per_group, dim=1)  # (B, H, N)
        xf = x.float()
        decay = torch.exp(dt * A)[:, :, None, None]  # (B, H, 1, 1)
        S = decay * S + (dt[:, :, None] * xf)[:, :, :, None] * B[:, :, None, :]  # (B, H, P, N)
        y = (S @ C[:, :, :, None]).squeeze(-1) + self.D.float()[None, :, None] * xf  # (B, H, P)
        return y.to(x.dtype), S
