"""`GenoLongConfig`: one configuration for every genolong model, and the mixer-pattern parser.

A model is an embedding, a stack of residual blocks and a head. Blocks differ only by their token mixer, named
in a short pattern string (mamba_ssm-style): ``"hyena*8"``, ``"(mamba2*3,attention)*4"``, ``"mlstm*12"``.
The number of layers is implied by the pattern. Every field below carries a comment saying what it does.
"""

from __future__ import annotations

import re

from transformers import PretrainedConfig

from genolong.errors import UsageError
from genolong.ops import BACKENDS

MIXER_NAMES = ("hyena", "mamba2", "attention", "mlstm")
RC_MODES = ("none", "average")
POOLINGS = ("mean", "last")

# Nucleotide vocabulary of genolong.tokenizers: [PAD]=0 [UNK]=1 [BOS]=2 [EOS]=3 [MASK]=4 A=5 C=6 G=7 T=8 N=9.
# Reverse complement in token space: specials and N map to themselves, A<->T, C<->G.
NUCLEOTIDE_COMPLEMENT_IDS = [0, 1, 2, 3, 4, 8, 7, 6, 5, 9]


def parse_mixer_pattern(pattern: str) -> list[str]:
    """Expand a mixer pattern into one mixer name per layer.

    Grammar: ``seq := item ("," item)*``, ``item := (NAME | "(" seq ")") ["*" INT]``; spaces are ignored.
    ``parse_mixer_pattern("(mamba2*2,attention)*2")`` -> ``["mamba2", "mamba2", "attention"] * 2``.
    """
    tokens = [(m.group(), m.start()) for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\S", pattern)]
    pos = 0  # index into tokens

    def fail(msg: str) -> UsageError:
        column = tokens[pos][1] + 1 if pos < len(tokens) else len(pattern) + 1
        return UsageError(
            f"bad mixer pattern {pattern!r}: {msg} at column {column}",
            hint=f"write e.g. 'hyena*8' or '(mamba2*3,attention)*4'; mixers: {', '.join(MIXER_NAMES)}",
        )

    def peek() -> str | None:
        return tokens[pos][0] if pos < len(tokens) else None

    def parse_seq() -> list[str]:
        nonlocal pos
        names = parse_item()
        while peek() == ",":
            pos += 1
            names += parse_item()
        return names

    def parse_item() -> list[str]:
        nonlocal pos
        tok = peek()
        if tok == "(":
            pos += 1
            names = parse_seq()
            if peek() != ")":
                raise fail("expected ')'")
            pos += 1
        elif tok is not None and tok in MIXER_NAMES:
            names = [tok]
            pos += 1
        elif tok is not None and re.fullmatch(r"[A-Za-z_]\w*", tok):
            raise fail(f"unknown mixer {tok!r}")
        else:
            raise fail("expected a mixer name or '('" if tok is not None else "unexpected end")
        if peek() == "*":
            pos += 1
            count = peek()
            if count is None or not count.isdigit() or int(count) < 1:
                raise fail("expected a repeat count >= 1 after '*'")
            pos += 1
            names = names * int(count)
        return names

    if not pattern.strip():
        raise UsageError("empty mixer pattern", hint="write e.g. 'hyena*8'")
    layers = parse_seq()
    if pos != len(tokens):
        raise fail(f"unexpected {peek()!r}")
    return layers


class GenoLongConfig(PretrainedConfig):
    """Configuration of a genolong model (backbone, heads, decoding, reverse-complement handling)."""

    model_type = "genolong"
    attribute_map = {"hidden_size": "d_model"}  # HF utilities look for `hidden_size`

    # --- stack ---
    mixers: str = "hyena*2"  # block stack as a pattern: names, ',' sequence, '*N' repeat, parentheses
    d_model: int = 128  # residual stream width
    mlp_ratio: float = 4.0  # SwiGLU hidden width / d_model after each mixer; 0 = no MLP in the blocks
    norm_eps: float = 1e-5  # RMSNorm epsilon
    max_position: int = 1024  # longest sequence (context length): Hyena filter length, RoPE range
    initializer_range: float = 0.02  # std of the normal init of linear and embedding weights
    dropout: float = 0.0  # training only: on the embeddings and on each mixer / MLP output before its residual add

    # --- vocabulary (defaults: genolong's 10-token nucleotide tokenizer) ---
    vocab_size: int = 10  # number of token ids
    pad_token_id: int | None = 0  # [PAD]: ignored by pooling, key-masked in attention
    bos_token_id: int | None = 2  # [BOS]
    eos_token_id: int | None = 3  # [EOS]: generation stops on it
    mask_token_id: int | None = 4  # [MASK]: the masked-LM corruption token
    complement_token_ids: list[int] | None = None  # id -> id of its complement; None: nucleotide map if V=10
    tie_word_embeddings: bool = True  # LM heads share the embedding matrix

    # --- Hyena ---
    hyena_order: int = 2  # number of gated long convolutions (>= 2)
    hyena_filter_dim: int = 64  # width of the MLP that generates the implicit long filters
    hyena_pos_dim: int = 5  # positional features fed to that MLP: normalized time + sin/cos pairs (odd, >= 3)
    hyena_short_conv: int = 3  # kernel of the short depthwise causal conv on the projections
    hyena_sine_freq: float = 1.0  # initial frequency of the sine activations in the filter MLP

    # --- Mamba2 ---
    mamba2_d_state: int = 64  # SSM state size N
    mamba2_n_heads: int = 8  # heads H; head dim P = mamba2_expand * d_model / H
    mamba2_expand: int = 2  # inner width / d_model
    mamba2_n_groups: int = 1  # groups G of B/C shared by H / G heads each
    mamba2_conv: int = 4  # kernel of the short conv over x, B, C
    mamba2_chunk_size: int = 64  # chunk length of the torch SSD scan (speed/memory only, never results)

    # --- attention ---
    attn_n_heads: int = 8  # query heads
    attn_n_kv_heads: int | None = None  # key/value heads (grouped-query); None = attn_n_heads
    rope_base: float = 10000.0  # RoPE base frequency

    # --- mLSTM ---
    mlstm_n_heads: int = 4  # heads of the matrix memory
    mlstm_expand: int = 2  # up-projection factor of the mLSTM layer
    mlstm_conv: int = 4  # kernel of the short conv feeding q and k
    mlstm_chunk_size: int = 64  # chunk length of the torch mLSTM path (speed/memory only, never results)
    mlstm_qkv_block: int = 0  # q/k/v projections block-diagonal with blocks this wide (xLSTM: 4); 0 = dense

    # --- behaviour ---
    bidirectional: bool = False  # masked-LM mode: conv/recurrent mixers also read reversed (same weights)
    rc_mode: str = "none"  # "average": heads average sequence and reverse complement (strand symmetry)
    pooling: str = "mean"  # sequence heads: "mean" over non-pad tokens or "last" non-pad token
    num_tracks: int = 1  # outputs per position of the track head
    gradient_checkpointing: bool = False  # recompute each block in backward (torch.utils.checkpoint)
    backend: str = "auto"  # genolong.ops backend: "auto", "torch", "triton" or "reference"
    use_cache: bool = True  # generate() keeps recurrent / key-value state between steps

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.complement_token_ids is None and self.vocab_size == len(NUCLEOTIDE_COMPLEMENT_IDS):
            self.complement_token_ids = list(NUCLEOTIDE_COMPLEMENT_IDS)
        self.check()
        # A config exists before any Auto* factory looks up its model class: register the classes now (once).
        from genolong.models.auto import register_auto_classes

        register_auto_classes()

    @property
    def layer_mixers(self) -> list[str]:
        """One mixer name per block, expanded from `mixers`."""
        return parse_mixer_pattern(self.mixers)

    @property
    def position_limited(self) -> bool:
        """Whether max_position bounds a sequence: Hyena filters end there and RoPE was trained up to it; a
        stack of only recurrent mixers (Mamba2, mLSTM) continues from its state for any length."""
        return any(m in ("hyena", "attention") for m in self.layer_mixers)

    @property
    def n_layers(self) -> int:
        return len(self.layer_mixers)

    @property
    def num_hidden_layers(self) -> int:  # the name HF utilities use
        return self.n_layers

    def check(self) -> None:
        """Raise `UsageError` naming the first inconsistent field."""

        def bad(msg: str) -> UsageError:
            return UsageError(f"GenoLongConfig: {msg}")

        kinds = set(self.layer_mixers)
        if self.d_model < 1 or self.vocab_size < 1 or self.max_position < 1:
            raise bad("d_model, vocab_size and max_position must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise bad(f"dropout must be in [0, 1), got {self.dropout}")
        if self.rc_mode not in RC_MODES:
            raise bad(f"rc_mode must be one of {RC_MODES}, got {self.rc_mode!r}")
        if self.pooling not in POOLINGS:
            raise bad(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.backend not in BACKENDS:
            raise bad(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        comp = self.complement_token_ids
        if comp is not None:
            if len(comp) != self.vocab_size or sorted(comp) != list(range(self.vocab_size)):
                raise bad("complement_token_ids must be a permutation of range(vocab_size)")
            if any(comp[comp[i]] != i for i in range(self.vocab_size)):
                raise bad(
                    "complement_token_ids must be its own inverse (complementing twice is the identity)"
                )
        elif self.rc_mode != "none":
            raise bad("rc_mode needs complement_token_ids for this vocabulary")
        if "hyena" in kinds and (
            self.hyena_order < 2 or self.hyena_pos_dim < 3 or self.hyena_pos_dim % 2 == 0
        ):
            raise bad("hyena_order must be >= 2 and hyena_pos_dim odd and >= 3")
        if "mamba2" in kinds:
            inner = self.mamba2_expand * self.d_model
            if inner % self.mamba2_n_heads or self.mamba2_n_heads % self.mamba2_n_groups:
                raise bad(
                    "mamba2_expand * d_model must divide by mamba2_n_heads, and heads by mamba2_n_groups"
                )
        if "attention" in kinds:
            kv = self.attn_n_kv_heads or self.attn_n_heads
            if (
                self.d_model % self.attn_n_heads
                or self.attn_n_heads % kv
                or (self.d_model // self.attn_n_heads) % 2
            ):
                raise bad(
                    "d_model must divide by attn_n_heads (even head dim), and attn_n_heads by attn_n_kv_heads"
                )
        if "mlstm" in kinds:
            inner = self.mlstm_expand * self.d_model
            if inner % self.mlstm_n_heads:
                raise bad("mlstm_expand * d_model must divide by mlstm_n_heads")
            if self.mlstm_qkv_block < 0 or (self.mlstm_qkv_block and inner % self.mlstm_qkv_block):
                raise bad("mlstm_qkv_block must be 0 (dense) or a positive divisor of mlstm_expand * d_model")
        for name in ("hyena_short_conv", "mamba2_conv", "mlstm_conv"):
            if not 1 <= getattr(self, name) <= 8:
                raise bad(f"{name} must be in 1..8 (short_conv kernels)")
