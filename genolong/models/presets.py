"""Named model shapes: published ones (HyenaDNA, HybriDNA-like, DNA-xLSTM-like) and tiny CPU variants.

``get_preset("hyenadna-small", rc_mode="average")`` returns a `GenoLongConfig`; keyword overrides win.

HyenaDNA shapes follow the released checkpoints (tiny-1k: d=128, 2 layers; small-32k: d=256, 4 layers;
large-1m: d=256, 8 layers; all order 2, filter MLP width 64, 5 positional features, short conv 3, context + 2
for BOS/EOS). Two deliberate differences: the block MLP is SwiGLU with the parameter count of HyenaDNA's
4x GELU MLP (ratio 8/3), and the vocabulary is genolong's 10 tokens instead of 12. The HybriDNA-like and
DNA-xLSTM-like entries are shapes in the spirit of those papers (mostly Mamba2 with interleaved attention;
a pure mLSTM stack of the DNA-xLSTM size class, with xLSTM's block-diagonal q/k/v projections of 4 x 4
blocks), not reproductions of released weights.
"""

from __future__ import annotations

from typing import Any

from genolong.errors import UsageError
from genolong.models.configuration import GenoLongConfig

_HYENADNA = dict(hyena_order=2, hyena_filter_dim=64, hyena_pos_dim=5, hyena_short_conv=3, mlp_ratio=8 / 3)
_TINY_MAMBA2 = dict(mamba2_d_state=16, mamba2_n_heads=4, mamba2_expand=2)

PRESETS: dict[str, dict[str, Any]] = {
    # --- published shapes ---
    "hyenadna-tiny": dict(mixers="hyena*2", d_model=128, max_position=1024 + 2, **_HYENADNA),
    "hyenadna-small": dict(mixers="hyena*4", d_model=256, max_position=32768 + 2, **_HYENADNA),
    "hyenadna-1m": dict(mixers="hyena*8", d_model=256, max_position=1_000_000 + 2, **_HYENADNA),
    "hybridna-like": dict(
        mixers="(mamba2*7,attention)*3",
        d_model=1024,
        max_position=131072,
        mlp_ratio=8 / 3,
        mamba2_d_state=128,
        mamba2_n_heads=32,
        mamba2_expand=2,
        attn_n_heads=16,
        attn_n_kv_heads=4,
    ),
    "dna-xlstm-like": dict(
        mixers="mlstm*10",
        d_model=128,
        max_position=32768,
        mlp_ratio=0.0,
        mlstm_n_heads=4,
        mlstm_expand=2,
        mlstm_qkv_block=4,
    ),
    # --- tiny CPU variants (tests, demos, smoke runs) ---
    "tiny-hyena": dict(mixers="hyena*2", d_model=64, max_position=1024, mlp_ratio=2.0, hyena_filter_dim=32),
    "tiny-mamba2": dict(mixers="mamba2*2", d_model=64, max_position=1024, mlp_ratio=2.0, **_TINY_MAMBA2),
    "tiny-hybrid": dict(
        mixers="(mamba2*2,attention)",
        d_model=64,
        max_position=1024,
        mlp_ratio=2.0,
        attn_n_heads=4,
        attn_n_kv_heads=2,
        **_TINY_MAMBA2,
    ),
    "tiny-xlstm": dict(mixers="mlstm*2", d_model=64, max_position=1024, mlp_ratio=0.0, mlstm_n_heads=4),
}


def list_presets() -> list[str]:
    """Names accepted by `get_preset`."""
    return list(PRESETS)


def get_preset(name: str, **overrides: Any) -> GenoLongConfig:
    """The `GenoLongConfig` of preset `name`, with `overrides` applied (e.g. bidirectional=True)."""
    if name not in PRESETS:
        raise UsageError(f"unknown model preset {name!r}", hint=f"choose one of {', '.join(PRESETS)}")
    return GenoLongConfig(**{**PRESETS[name], **overrides})
