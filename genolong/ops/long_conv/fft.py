"""Fast long convolution by FFT: O(L log L) time and O(L) memory, on any device, float32 inside.

The causal linear convolution of u (length L) with k (length Lk) has length L + Lk - 1; a circular convolution
of size n >= L + Lk - 1 contains it without wrap-around, so we zero-pad both to n, multiply their rfft's and
keep the first L outputs.

The backward pass is written out (`_CausalFFTConv`) rather than left to autograd: the gradients are the
matching cross-correlations, ``grad_v = irfft(rfft(g)·conj(K))[:L]`` and ``grad_k = irfft(sum_b
rfft(g)·conj(V))[:Lk]`` (zero padding to n keeps the wrap-around out, as in the forward). Autograd would
differentiate each rfft through a full-length complex FFT of the padded signal, about twice the work, and
keep the spectra alive between the passes; here only v and k are saved and their spectra recomputed.
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


class _CausalFFTConv(torch.autograd.Function):
    """z = (k * v)[:L] by FFTs of size n, with the hand-written backward described above."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, k: torch.Tensor, n: int) -> torch.Tensor:
        # v (B, D, L), k (D, Lk), both float32 (or float64) -> z (B, D, L)
        ctx.save_for_backward(v, k)
        ctx.n = n
        return torch.fft.irfft(torch.fft.rfft(v, n=n) * torch.fft.rfft(k, n=n), n=n)[..., : v.shape[-1]]

    @staticmethod
    def backward(ctx, grad_z: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        v, k = ctx.saved_tensors
        n = ctx.n
        g_hat = torch.fft.rfft(grad_z, n=n)  # (B, D, n//2 + 1)
        grad_v = grad_k = None
        if ctx.needs_input_grad[0]:
            grad_v = torch.fft.irfft(g_hat * torch.fft.rfft(k, n=n).conj(), n=n)[..., : v.shape[-1]]
        if ctx.needs_input_grad[1]:
            cross = (g_hat * torch.fft.rfft(v, n=n).conj()).sum(0)  # (D, n//2 + 1): batch summed first
            grad_k = torch.fft.irfft(cross, n=n)[..., : k.shape[-1]]
        return grad_v, grad_k, None


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
    k = upcast(k)
    if skip is not None:  # skip·v[t] is lag 0 of the convolution: fold it into tap 0 rather than a pass over v
        k = torch.cat([k[:, :1] + upcast(skip)[:, None], k[:, 1:]], dim=1)  # (D, Lk)
    z = _CausalFFTConv.apply(v, k, n)  # (B, D, L)
    y = z if post_gate is None else z * upcast(post_gate)  # (B, D, L)
    return y.to(u.dtype)
