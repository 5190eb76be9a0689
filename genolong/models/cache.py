"""`GenoLongCache`: the decoding state of every block, for `generate()` and incremental scoring.

One plain dict per block, owned and filled by that block's mixer:

- Mamba2: ``tail`` (B, C, W-1) short-conv inputs, ``ssm`` (B, H, P, N) float32 state: constant size.
- mLSTM: ``tail`` (B, E, W-1), ``mem`` = (C (B, H, Dv, Dk), n (B, H, Dk), m (B, H)) float32: constant size.
- attention: ``k``, ``v`` (B, Hkv, T, hd) rotated keys and values: grows with T.
- Hyena: ``tail`` and ``history`` (the input of each long convolution, (B, D, T) per order): grows with T.

It is not a `transformers.Cache` (whose layers assume key/value tensors); it implements the few methods that
`GenerationMixin` calls on a cache. Every tensor has the batch first, which is all beam search needs.
"""

from __future__ import annotations

import torch


class GenoLongCache:
    """Per-block decoding state plus the number of positions already consumed."""

    is_compileable = False  # generate() never wraps this cache in torch.compile
    is_croppable = False  # recurrent states cannot be rolled back by a number of tokens

    def __init__(self, n_layers: int):
        self.layers: list[dict] = [{} for _ in range(n_layers)]
        self.seen_tokens = 0

    def __len__(self) -> int:
        return len(self.layers)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Positions already consumed (the offset of the next input)."""
        return self.seen_tokens

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Keep batch rows `beam_idx` of every state (beam search)."""
        self.layers = [
            {key: _select(value, beam_idx) for key, value in layer.items()} for layer in self.layers
        ]

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Repeat every batch row `repeats` times (several sequences per prompt)."""
        self.layers = [
            {key: _repeat(value, repeats) for key, value in layer.items()} for layer in self.layers
        ]


def _select(value, index: torch.Tensor):
    if isinstance(value, torch.Tensor):
        return value.index_select(0, index.to(value.device))
    return type(value)(_select(v, index) for v in value)  # tuples (mLSTM memory) and lists (Hyena history)


def _repeat(value, repeats: int):
    if isinstance(value, torch.Tensor):
        return value.repeat_interleave(repeats, dim=0)
    return type(value)(_repeat(v, repeats) for v in value)
