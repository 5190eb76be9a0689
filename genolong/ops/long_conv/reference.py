"""Reference long convolution: the causal depthwise convolution of DESIGN.md §3 as an explicit sum over lags.

    y[b, d, t] = sum_{s=0..min(t, Lk-1)} k[d, s] * u[b, d, t-s]  +  skip[d] * u[b, d, t]

O(L·Lk) and slow; this is the spec the FFT path is tested against.
"""

from __future__ import annotations

import torch

from genolong.ops._precision import autocast_off, upcast


@autocast_off
def long_conv_reference(u: torch.Tensor, k: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
    """Causal depthwise long convolution, lag by lag. u (B, D, L), k (D, Lk), skip (D,) -> (B, D, L)."""
    L = u.shape[-1]
    Lk = k.shape[-1]
    uf = upcast(u)  # (B, D, L)
    kf = upcast(k)  # (D, Lk)
    y = torch.zeros_like(uf)  # (B, D, L)
    for s in range(Lk):
        # lag s: output t receives k[:, s] * u[:, t - s] for every t >= s
        y[..., s:] += kf[:, s, None] * uf[..., : L - s]  # (B, D, L - s)
    if skip is not None:
        y = y + upcast(skip)[:, None] * uf  # (B, D, L)
    return y.to(u.dtype)
