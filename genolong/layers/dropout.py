"""Dropout whose CPU mask costs a fraction of ``nn.Dropout``'s.

On CPU, ``nn.Dropout`` draws one Bernoulli sample per element (``bernoulli_``, roughly 10 ns each on these cores):
in the tiny Hyena config that was ~17% of a training step. Here each element is kept when a uniform 16-bit
word is at least ``round(p·65536)``, and the words come four to a 64-bit draw. The kept share is
``1 - round(p·65536)/65536`` (within 1e-5 of ``1 - p``) and kept values are divided by exactly that share, so
the expected output is the input, as with ``nn.Dropout``. Draws use the default generator: seeding
(``torch.manual_seed``, Lightning's ``seed_everything``) and its saved state make runs reproducible.
On other devices the library's own dropout is already fast and is used as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WORD_VALUES = 1 << 16  # a mask word is uniform over 65536 values


def word_dropout_mask(shape: torch.Size, dropped: int) -> torch.Tensor:
    """A bool tensor of `shape`, each element False with probability `dropped` / 65536."""
    n = shape.numel()
    draws = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)  # 64 uniform bits each
    words = draws.view(torch.int16)[:n]  # (n,) uniform over [-32768, 32767]
    return (words >= dropped - WORD_VALUES // 2).view(shape)  # the lowest `dropped` values drop the element


class Dropout(nn.Dropout):
    """``nn.Dropout`` (not in place), with the cheaper 16-bit mask on CPU (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        dropped = round(self.p * WORD_VALUES)
        if x.device.type != "cpu" or dropped == WORD_VALUES:
            return F.dropout(x, self.p, training=True)
        keep = word_dropout_mask(x.shape, dropped)
        share = 1 - dropped / WORD_VALUES  # of the elements kept
        return x * (keep.to(x.dtype) / share)  # gradient: the same mask, same scale
