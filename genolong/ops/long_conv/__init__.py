"""``long_conv``: gated causal depthwise long convolution (Hyena's implicit filters), with backend dispatch."""

from __future__ import annotations

import torch

from genolong.errors import UsageError
from genolong.ops._backend import Backend, select_backend
from genolong.ops._validate import expect_ndim, expect_shape
from genolong.ops.long_conv.fft import long_conv_fft
from genolong.ops.long_conv.reference import long_conv_reference
from genolong.ops.long_conv.tail import DIRECT_MAX_N, long_conv_tail_direct

__all__ = ["long_conv", "long_conv_fft", "long_conv_reference", "long_conv_tail"]


def long_conv(
    u: torch.Tensor,
    k: torch.Tensor,
    skip: torch.Tensor | None = None,
    *,
    pre_gate: torch.Tensor | None = None,
    post_gate: torch.Tensor | None = None,
    backend: Backend = "auto",
) -> torch.Tensor:
    """Gated causal depthwise convolution, with ``v = pre_gate·u``:
    ``y[b,d,t] = post_gate[b,d,t]·(sum_s k[d,s]·v[b,d,t-s] + skip[d]·v[b,d,t])`` (a missing gate is 1).

    u, pre_gate, post_gate (B, D, L), k (D, Lk) with 1 <= Lk <= L, skip (D,) or None. Returns (B, D, L) in
    u's dtype; accumulates in float32 (float64 inputs stay float64). The Triton path fuses the gates into
    its first load and last store.
    backend: "auto" | "torch" (FFT) | "triton" | "reference" (direct sum); see genolong.ops._backend.
    """
    expect_ndim("long_conv", "u", u, 3, "(B, D, L)")
    expect_ndim("long_conv", "k", k, 2, "(D, Lk)")
    _, D, L = u.shape
    if k.shape[0] != D or not 1 <= k.shape[1] <= L:
        raise UsageError(
            f"long_conv: k has shape {tuple(k.shape)}, expected (D={D}, Lk) with 1 <= Lk <= L={L}"
        )
    expect_shape("long_conv", "skip", skip, (D,))
    expect_shape("long_conv", "pre_gate", pre_gate, tuple(u.shape))
    expect_shape("long_conv", "post_gate", post_gate, tuple(u.shape))
    chosen = select_backend("long_conv", backend, u, k, skip, pre_gate, post_gate)
    if chosen == "triton":  # imported here: Triton loads only when asked for
        from genolong.ops.long_conv.triton import long_conv_triton

        return long_conv_triton(u, k, skip, pre_gate, post_gate)
    if chosen == "reference":
        return long_conv_reference(u, k, skip, pre_gate, post_gate)
    return long_conv_fft(u, k, skip, pre_gate, post_gate)


def long_conv_tail(
    u: torch.Tensor,
    k: torch.Tensor,
    skip: torch.Tensor | None = None,
    *,
    n: int,
    backend: Backend = "auto",
) -> torch.Tensor:
    """``long_conv(u, k, skip)[..., -n:]``, (B, D, n): by direct sums when ``n`` is small (incremental decoding),
    else by :func:`long_conv` on every position."""
    if not 1 <= n <= u.shape[-1]:
        raise UsageError(f"long_conv_tail: n must be between 1 and L={u.shape[-1]}, got {n}")
    if n <= DIRECT_MAX_N and backend in ("auto", "torch") and k.shape[0] == u.shape[1]:
        return long_conv_tail_direct(u, k, skip, n)
    return long_conv(u, k, skip, backend=backend)[..., -n:]
