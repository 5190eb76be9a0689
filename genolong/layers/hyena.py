"""The Hyena operator of HyenaDNA: gated long convolutions with implicit filters.

    u (B, L, D) --in_proj--> (order + 1) streams --short causal conv--> gates x_1..x_N and value v
    for i in 1..N:  v = x_i * long_conv(v, h_i, skip=bias_i)
    y = out_proj(v)

The long filters h_i (D, L) are not stored: a small MLP with sine activations maps positional features of
each tap t (normalized time and sin/cos at a few frequencies) to one value per channel and order, and an
exponential decay window, one rate per channel, makes the filters fade with distance. Tap t depends only on
t / (max_len - 1), so the first L taps are the same for any sequence length: that is what makes decoding
with a cache exact. Hyena has no constant-size recurrent state: the decoding cache keeps the input of every
long convolution (O(L) memory) and re-runs each convolution over that history for the new positions.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genolong.layers.conv import short_conv_with_state
from genolong.ops import long_conv, long_conv_tail


class Sin(nn.Module):
    """sin(freq * x) with one learnable frequency per feature (HyenaDNA's filter activation)."""

    def __init__(self, dim: int, freq: float = 1.0):
        super().__init__()
        self.init_freq = freq
        self.freq = nn.Parameter(torch.full((dim,), float(freq)))  # (dim,)

    def reset_parameters(self) -> None:
        nn.init.constant_(self.freq, self.init_freq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class HyenaFilter(nn.Module):
    """Implicit long filters: h[i, d, t] = MLP(features(t))[i, d] * exp(-rate_d * t / (max_len - 1))."""

    def __init__(
        self, d_model: int, order: int, filter_dim: int, pos_dim: int, max_len: int, sine_freq: float = 1.0
    ):
        super().__init__()
        self.d_model, self.order, self.pos_dim, self.max_len = d_model, order, pos_dim, max_len
        self.mlp = nn.Sequential(
            nn.Linear(pos_dim, filter_dim),
            Sin(filter_dim, sine_freq),
            nn.Linear(filter_dim, filter_dim),
            Sin(filter_dim, sine_freq),
            nn.Linear(filter_dim, order * d_model, bias=False),
        )

    def features(self, length: int, device: torch.device) -> torch.Tensor:
        """Positional features of taps 0..length-1: (length, pos_dim) = [t, cos(2πf t), sin(2πf t) ...]."""
        t = torch.arange(length, device=device, dtype=torch.float32)[:, None]  # (L, 1)
        t = t / max(self.max_len - 1, 1)  # normalized time: 1 at the last position of the context
        n_freqs = (self.pos_dim - 1) // 2
        freqs = torch.linspace(1e-4, n_freqs - 1, n_freqs, device=device)  # (n_freqs,)
        if n_freqs == 1:
            freqs = torch.ones(1, device=device)
        phase = 2 * math.pi * t * freqs[None, :]  # (L, n_freqs)
        return torch.cat([t, phase.cos(), phase.sin()], dim=-1)  # (L, pos_dim)

    def forward(self, length: int, device: torch.device) -> torch.Tensor:
        """The first `length` taps of every filter: (order, D, length), float32."""
        z = self.features(length, device)  # (L, pos_dim)
        h = self.mlp(z.to(self.mlp[0].weight.dtype)).float()  # (L, order * D)
        # Decay rates spread across channels: the fastest reaches 1e-2 at 30% of max_len, the slowest at 150%.
        # Computed here rather than kept in a buffer, so that meta-device construction never leaves it unset.
        rates = torch.linspace(math.log(100) / 0.3, math.log(100) / 1.5, self.d_model, device=device)  # (D,)
        window = torch.exp(-z[:, :1] * rates[None, :])  # (L, D); z[:, 0] is normalized time
        h = h.view(length, self.order, self.d_model) * window[:, None, :]  # (L, order, D)
        return h.permute(1, 2, 0)  # (order, D, L)


class HyenaOperator(nn.Module):
    """Hyena token mixer (causal). Maps (B, L, D) -> (B, L, D)."""

    def __init__(
        self,
        d_model: int,
        order: int = 2,
        filter_dim: int = 64,
        pos_dim: int = 5,
        short_conv_size: int = 3,
        max_len: int = 1024,
        sine_freq: float = 1.0,
        backend: str = "auto",
    ):
        super().__init__()
        self.d_model, self.order, self.max_len, self.backend = d_model, order, max_len, backend
        channels = (order + 1) * d_model
        self.in_proj = nn.Linear(d_model, channels)
        self.short_w = nn.Parameter(torch.empty(channels, short_conv_size))  # (C, W) depthwise taps
        self.short_b = nn.Parameter(torch.empty(channels))  # (C,)
        self.filter = HyenaFilter(d_model, order, filter_dim, pos_dim, max_len, sine_freq)
        self.filter_bias = nn.Parameter(torch.empty(order, d_model))  # (order, D): the skip term of each conv
        self.out_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.short_w.shape[1])  # nn.Conv1d's default for a depthwise kernel
        nn.init.uniform_(self.short_w, -bound, bound)
        nn.init.uniform_(self.short_b, -bound, bound)
        nn.init.normal_(self.filter_bias)

    def forward(
        self, x: torch.Tensor, state: dict | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, L, D) -> (B, L, D). `state` (decoding): conv tail and each long conv's input history.

        `mask` is unused: right padding comes after every real position, and a causal mixer only looks back.
        """
        B, L, D = x.shape
        z = self.in_proj(x).transpose(1, 2)  # (B, (order + 1) D, L)
        z = short_conv_with_state(z, self.short_w, self.short_b, state, self.backend)  # (B, (order + 1) D, L)
        *gates, v = z.split(D, dim=1)  # order gates and the value, (B, D, L) each

        past = state["history"][0].shape[2] if state is not None and "history" in state else 0
        h = self.filter(past + L, x.device)  # (order, D, past + L)
        history = []
        for i in range(self.order):
            if past:
                v = torch.cat([state["history"][i], v], dim=2)  # (B, D, past + L)
            history.append(v)
            if past:  # decoding: outputs for the L new positions only (direct sums when L is small)
                y = long_conv_tail(v, h[i], skip=self.filter_bias[i], n=L, backend=self.backend)  # (B, D, L)
                v = gates[i] * y
            else:  # the gate multiply is fused into the Triton kernel's store
                v = long_conv(v, h[i], skip=self.filter_bias[i], post_gate=gates[i], backend=self.backend)
        if state is not None:
            state["history"] = history
        return self.out_proj(v.transpose(1, 2))  # (B, L, D)
