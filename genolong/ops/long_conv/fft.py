"""Fast long convolution by FFT: O(L log L) time and O(L) memory, on any device, float32 inside.

The causal linear convolution of u (length L) with k (length Lk) has length L + Lk - 1; a circular convolution
of size n >= L + Lk - 1 contains it without wrap-around, so we zero-pad both to n, multiply their rfft's and
keep the first L outputs.
"""

from __future__ import annotations

import torch

from genolong.ops._precision import autocast_off, upcast


def fft_size(n: int) -> int:
    """The smallest 2^a·3^b·5^c >= n (sizes the FFT library handles fastest)."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


@autocast_off
def long_conv_fft(
    u: torch.Tensor,
    k: torch.Tensor,
    skip: torch.Tensor | None = None,
    pre_gate: torch.Tensor | None = None,
    post_gate: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gated causal depthwise long convolution by FFT (see reference.py for the formula).

    u, pre_gate, post_gate (B, D, L), k (D, Lk), skip (D,) -> (B, D, L) in u's dtype."""
    L = u.shape[-1]
    Lk = k.shape[-1]
    n = fft_size(L + Lk - 1)
    v = upcast(u) if pre_gate is None else upcast(u) * upcast(pre_gate)  # (B, D, L)
    v_hat = torch.fft.rfft(v, n=n)  # (B, D, n//2 + 1) complex64
    k_hat = torch.fft.rfft(upcast(k), n=n)  # (D, n//2 + 1) complex64
    z = torch.fft.irfft(v_hat * k_hat, n=n)[..., :L]  # (B, D, L)
    if skip is not None:
        z = z + upcast(skip)[:, None] * v  # (B, D, L)
    y = z if post_gate is None else z * upcast(post_gate)  # (B, D, L)
    return y.to(u.dtype)
