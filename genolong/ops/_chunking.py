"""Helpers shared by the chunked scans (ssd, mlstm): padding to whole chunks, the segment-sum decay mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_length(x: torch.Tensor, dim: int, multiple: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``x`` at the end of ``dim`` so that its size there is a multiple of ``multiple``."""
    extra = -x.shape[dim] % multiple
    if extra == 0:
        return x
    pad = [0, 0] * (x.ndim - 1 - dim % x.ndim) + [0, extra]
    return F.pad(x, pad, value=value)


def segsum(a: torch.Tensor) -> torch.Tensor:
    """Segment sums of log-decays within a chunk: ``out[..., t, s] = a[s+1] + ... + a[t]`` for ``s <= t``.

    ``a`` is ``(..., Q)``; the result is ``(..., Q, Q)`` with ``-inf`` above the diagonal (s > t), so that
    ``exp(out)`` is the causal decay mask. Each entry is summed over its own segment (a masked cumsum) rather
    than taken as a difference of two long prefix sums, which would lose precision.
    """
    Q = a.shape[-1]
    terms = a.unsqueeze(-1).expand(*a.shape, Q)  # (..., Q, Q): terms[r, s] = a[r]
    strictly_below = torch.ones(Q, Q, dtype=torch.bool, device=a.device).tril(-1)
    terms = terms.masked_fill(~strictly_below, 0.0)  # keep r > s
    out = terms.cumsum(dim=-2)  # (..., Q, Q): out[t, s] = sum of a[r] for s < r <= t
    causal = torch.ones(Q, Q, dtype=torch.bool, device=a.device).tril(0)
    return out.masked_fill(~causal, float("-inf"))
