"""The last ``n`` outputs of a causal long convolution, by direct sums: what incremental decoding needs.

After a cache holds ``L - n`` positions, a Hyena layer needs outputs only for the ``n`` new ones. The FFT path
computes all ``L`` (O(L log L) per call); for a few new positions the direct sum over the filter is
O(n · Lk) per channel, so a decoded token costs O(L) instead. The spec is ``long_conv(u, k, skip)[..., -n:]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genolong.ops._precision import autocast_off, upcast

DIRECT_MAX_N = 32  # above this many new positions the FFT over everything is cheaper


@autocast_off
def long_conv_tail_direct(u: torch.Tensor, k: torch.Tensor, skip: torch.Tensor | None, n: int) -> torch.Tensor:
    """u (B, D, L), k (D, Lk), skip (D,) or None -> (B, D, n): outputs at positions L - n .. L - 1."""
    L, Lk = u.shape[-1], k.shape[-1]
    first = L - n - Lk + 1  # first input position any of the n outputs reads (negative: before the start)
    window = F.pad(upcast(u[..., max(first, 0) :]), (max(-first, 0), 0))  # (B, D, Lk + n - 1)
    patches = window.unfold(-1, Lk, 1)  # (B, D, n, Lk): patch j holds the inputs of output L - n + j
    y = torch.einsum("bdjs,ds->bdj", patches, upcast(k).flip(-1))  # (B, D, n)
    if skip is not None:
        y = y + upcast(skip)[:, None] * upcast(u[..., L - n :])
    return y.to(u.dtype)
