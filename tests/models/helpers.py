"""Tiny model configurations shared by the model tests (d_model 32, two or three blocks, L <= 64)."""

from __future__ import annotations

import torch

from genolong.models import GenoLongConfig

# One small stack per family; "hybrid" interleaves Mamba2 and attention.
FAMILIES = {
    "hyena": "hyena*2",
    "mamba2": "mamba2*2",
    "hybrid": "(mamba2,attention)",
    "mlstm": "mlstm*2",
    "attention": "attention*2",
}


def tiny_config(mixers: str, **overrides) -> GenoLongConfig:
    """A CPU-sized config of the given stack; `overrides` replace any field."""
    fields = dict(
        mixers=mixers,
        d_model=32,
        max_position=64,
        mlp_ratio=2.0,
        hyena_filter_dim=16,
        mamba2_d_state=8,
        mamba2_n_heads=4,
        mamba2_chunk_size=16,
        attn_n_heads=4,
        attn_n_kv_heads=2,
        mlstm_n_heads=2,
        mlstm_chunk_size=16,
        initializer_range=0.1,
    )
    return GenoLongConfig(**{**fields, **overrides})


def random_dna(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    """(batch, length) token ids of random bases A, C, G, T (ids 5..8)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, 9, (batch, length), generator=g)


def state_size(state) -> int:
    """Number of elements in a (nested dict / list / tuple of) tensors, e.g. a decoding state."""
    if isinstance(state, torch.Tensor):
        return state.numel()
    if isinstance(state, dict):
        return sum(state_size(v) for v in state.values())
    return sum(state_size(v) for v in state)
