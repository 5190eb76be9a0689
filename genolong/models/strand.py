"""Reversing the real part of each row: the reverse pass of bidirectional mixers, and reverse complements.

Rows are right-padded: row b holds `n_b` real positions, then padding. Its reversal maps position p < n_b to
n_b - 1 - p and leaves padding where it is, so a reversed batch is still right-padded, and reversing twice is
the identity.
"""

from __future__ import annotations

import torch


def reverse_index(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """Gather index (B, L) reversing the real prefix of each row; None (a plain flip) without padding.

    mask (B, L): 1 for real positions, 0 for right padding, or None. `like` (B, L, ...): shape and device.
    """
    if mask is None or bool(mask.all()):
        return None
    B, L = like.shape[:2]
    n = mask.long().sum(dim=1, keepdim=True)  # (B, 1) real positions per row
    pos = torch.arange(L, device=like.device)[None, :].expand(B, L)  # (B, L)
    return torch.where(pos < n, n - 1 - pos, pos)


def reverse_rows(x: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    """x (B, L, ...) with each row's real prefix reversed (`index` from `reverse_index`)."""
    if index is None:
        return x.flip(1)
    shape = index.shape + (1,) * (x.ndim - 2)
    return x.gather(1, index.view(shape).expand_as(x))
