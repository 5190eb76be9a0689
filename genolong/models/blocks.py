"""The residual block of every genolong model, and the factory that builds its token mixer from the config.

    block(x) = x + mixer(norm(x)), then x + mlp(norm(x))      (pre-norm residual; no MLP when mlp_ratio = 0)

In training, `config.dropout` zeroes a share of each mixer and MLP output before it joins the residual stream.

With `config.bidirectional` the conv/recurrent mixers read the sequence both ways with the same weights
(Caduceus-style: mixer(h) + reverse(mixer(reverse(h)))), where reverse flips the real part of each row;
attention is built without its causal mask instead.
"""

from __future__ import annotations

import torch
from torch import nn

from genolong.errors import UsageError
from genolong.layers.attention import Attention
from genolong.layers.dropout import Dropout
from genolong.layers.hyena import HyenaOperator
from genolong.layers.mamba2 import Mamba2Mixer
from genolong.layers.mlp import GatedMLP
from genolong.layers.mlstm import MLSTMLayer
from genolong.layers.norm import RMSNorm
from genolong.models.configuration import GenoLongConfig
from genolong.models.strand import reverse_rows


def build_mixer(name: str, config: GenoLongConfig) -> nn.Module:
    """The token mixer called `name` in the pattern, sized from the config."""
    c = config
    if name == "hyena":
        return HyenaOperator(
            c.d_model,
            order=c.hyena_order,
            filter_dim=c.hyena_filter_dim,
            pos_dim=c.hyena_pos_dim,
            short_conv_size=c.hyena_short_conv,
            max_len=c.max_position,
            sine_freq=c.hyena_sine_freq,
            backend=c.backend,
        )
    if name == "mamba2":
        return Mamba2Mixer(
            c.d_model,
            d_state=c.mamba2_d_state,
            n_heads=c.mamba2_n_heads,
            expand=c.mamba2_expand,
            n_groups=c.mamba2_n_groups,
            conv_size=c.mamba2_conv,
            chunk_size=c.mamba2_chunk_size,
            backend=c.backend,
        )
    if name == "attention":
        return Attention(
            c.d_model,
            n_heads=c.attn_n_heads,
            n_kv_heads=c.attn_n_kv_heads,
            causal=not c.bidirectional,
            rope_base=c.rope_base,
        )
    if name == "mlstm":
        return MLSTMLayer(
            c.d_model,
            n_heads=c.mlstm_n_heads,
            expand=c.mlstm_expand,
            conv_size=c.mlstm_conv,
            chunk_size=c.mlstm_chunk_size,
            qkv_block=c.mlstm_qkv_block,
            backend=c.backend,
        )
    raise UsageError(f"unknown mixer {name!r}", hint="mixers: hyena, mamba2, attention, mlstm")


class GenoLongBlock(nn.Module):
    """Pre-norm residual block around one token mixer and an optional SwiGLU MLP."""

    def __init__(self, config: GenoLongConfig, mixer_name: str):
        super().__init__()
        self.mixer_name = mixer_name
        self.mixer_norm = RMSNorm(config.d_model, config.norm_eps)
        self.mixer = build_mixer(mixer_name, config)
        # Attention is bidirectional by dropping its mask; the others get a second, reversed pass.
        self.two_way = config.bidirectional and mixer_name != "attention"
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps) if config.mlp_ratio > 0 else None
        self.dropout = Dropout(config.dropout)
        self.mlp = None
        if config.mlp_ratio > 0:
            self.mlp = GatedMLP(config.d_model, int(config.mlp_ratio * config.d_model))

    def forward(
        self, x: torch.Tensor, state: dict | None, mask: torch.Tensor | None, rev: torch.Tensor | None
    ):
        """x (B, L, D); state: this block's decoding dict; mask (B, T) 1 = token; rev (B, L) row reversal."""
        h = self.mixer_norm(x)  # (B, L, D)
        if self.two_way:
            m = self.mixer(h) + reverse_rows(self.mixer(reverse_rows(h, rev)), rev)
        else:
            m = self.mixer(h, state=state, mask=mask)
        x = x + self.dropout(m)
        if self.mlp is not None:
            x = x + self.dropout(self.mlp(self.mlp_norm(x)))
        return x
