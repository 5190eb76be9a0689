"""Reference long convolution: the gated causal depthwise convolution, written as a sum over lags.

    v[b, d, t] = pre_gate[b, d, t] * u[b, d, t]                                    (v = u without pre_gate)
    z[b, d, t] = sum_{s=0..min(t, Lk-1)} k[d, s] * v[b, d, t-s]  +  skip[d] * v[b, d, t]
    y[b, d, t] = post_gate[b, d, t] * z[b, d, t]                                   (y = z without post_gate)

O(L·Lk) and slow; this is the spec the FFT and Triton paths are tested against.
"""

from __future__ import annotations

import torch

from genolong.ops._precision import autocast_off, upcast


@autocast_off
def long_conv_reference(
    u: torch.Tensor,
    k: torch.Tensor,
    skip: torch.Tensor | None = None,
    pre_gate: torch.Tensor | None = None,
    post_gate: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gated causal depthwise long convolution, lag by lag. u, gates (B, D, L), k (D, Lk), skip (D,) -> (B, D, L)."""
    L = u.shape[-1]
    Lk = k.shape[-1]
    v = upcast(u) if pre_gate is None else upcast(u) * upcast(pre_gate)  # (B, D, L)
    kf = upcast(k)  # (D, Lk)
    z = torch.zeros_like(v)  # (B, D, L)
    for s in range(Lk):
        # lag s: output t receives k[:, s] * v[:, t - s] for every t >= s
        z[..., s:] += kf[:, s, None] * v[..., : L - s]  # (B, D, L - s)
    if skip is not None:
        z = z + upcast(skip)[:, None] * v  # (B, D, L)
    y = z if post_gate is None else z * upcast(post_gate)  # (B, D, L)
    return y.to(u.dtype)
