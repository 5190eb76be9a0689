"""Layer tests: causality, incremental decoding = full pass, bidirectional attention, masks, norms, RoPE."""

from __future__ import annotations

import pytest
import torch

from genolong.layers import (
    Attention,
    GatedMLP,
    GatedRMSNorm,
    HyenaFilter,
    HyenaOperator,
    Mamba2Mixer,
    MLSTMLayer,
    MultiHeadNorm,
    RMSNorm,
)
from genolong.layers.attention import apply_rope, rope_angles
from genolong.layers.mlstm import BlockDiagonalLinear

D = 32


def make(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "hyena":
        return HyenaOperator(D, order=3, filter_dim=16, max_len=64)
    if kind == "mamba2":
        return Mamba2Mixer(D, d_state=8, n_heads=4, n_groups=2, chunk_size=8)
    if kind == "mlstm":
        return MLSTMLayer(D, n_heads=2, chunk_size=8)
    if kind == "mlstm-qkv-blocks":
        return MLSTMLayer(D, n_heads=2, chunk_size=8, qkv_block=4)
    return Attention(D, n_heads=4, n_kv_heads=2)


CAUSAL = ["hyena", "mamba2", "mlstm", "mlstm-qkv-blocks", "attention"]


@pytest.mark.parametrize("kind", CAUSAL)
def test_changing_a_future_position_never_changes_the_past(kind):
    layer = make(kind)
    x = torch.randn(2, 40, D)
    x2 = x.clone()
    x2[:, 25] += 3.0
    y, y2 = layer(x), layer(x2)
    assert torch.allclose(y[:, :25], y2[:, :25], atol=1e-5)  # FFT round-off only
    assert not torch.allclose(y[:, 25:], y2[:, 25:], atol=1e-3)


@pytest.mark.parametrize("prefill", [1, 2, 4, 5, 11])
@pytest.mark.parametrize("kind", [*CAUSAL, "hyena-conv7"])
def test_decoding_with_state_equals_the_full_pass(kind, prefill):
    """Prefill (also shorter than the short convolution), then single steps (the recurrent step), then a
    multi-token chunk: same as one pass."""
    if kind == "hyena-conv7":
        torch.manual_seed(0)
        layer = HyenaOperator(D, order=2, filter_dim=16, max_len=64, short_conv_size=7)
    else:
        layer = make(kind)
    x = torch.randn(2, 30, D)
    full = layer(x)
    state: dict = {}
    parts = [layer(x[:, :prefill], state=state)]
    parts += [layer(x[:, t : t + 1], state=state) for t in range(prefill, 20)]
    parts.append(layer(x[:, 20:], state=state))
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)


def test_mamba2_and_mlstm_states_have_constant_size():
    for kind in ("mamba2", "mlstm"):
        layer = make(kind)
        state: dict = {}
        layer(torch.randn(1, 20, D), state=state)
        shapes = {k: [t.shape for t in v] if isinstance(v, tuple) else v.shape for k, v in state.items()}
        layer(torch.randn(1, 1, D), state=state)
        assert {
            k: [t.shape for t in v] if isinstance(v, tuple) else v.shape for k, v in state.items()
        } == shapes


def test_block_diagonal_projection_is_a_dense_one_with_off_block_weights_zero():
    torch.manual_seed(0)
    proj = BlockDiagonalLinear(24, 4)
    x = torch.randn(2, 5, 24)
    dense = torch.block_diag(*proj.weight.detach())  # (24, 24): the 6 blocks (in, out) on the diagonal
    assert torch.allclose(proj(x), x @ dense, atol=1e-6)
    assert sum(p.numel() for p in proj.parameters()) == 6 * 4 * 4
    dense_layer, block_layer = MLSTMLayer(D, n_heads=2), MLSTMLayer(D, n_heads=2, qkv_block=4)
    n_dense, n_block = (sum(p.numel() for p in m.parameters()) for m in (dense_layer, block_layer))
    assert n_dense - n_block == 3 * (64 * 64 - 16 * 4 * 4)  # q, k, v at inner width 2 * D


def test_bidirectional_attention_sees_both_sides_and_ignores_padding():
    torch.manual_seed(0)
    attn = Attention(D, n_heads=4, causal=False)
    x = torch.randn(2, 12, D)
    x2 = x.clone()
    x2[:, 8] += 3.0
    assert not torch.allclose(attn(x)[:, :8], attn(x2)[:, :8], atol=1e-4)

    mask = torch.ones(2, 12)
    mask[1, 9:] = 0  # row 1: 9 tokens then padding
    x3 = x.clone()
    x3[1, 9:] = torch.randn(3, D)  # whatever the pads hold
    y, y3 = attn(x, mask=mask), attn(x3, mask=mask)
    assert torch.allclose(y[1, :9], y3[1, :9], atol=1e-6)
    assert torch.allclose(y[1, :9], attn(x[1:, :9])[0], atol=1e-5)  # same as the unpadded row
    assert torch.isfinite(y).all()


def test_rope_is_float32_and_relative():
    cos, sin = rope_angles(torch.arange(5, 8), 16, 1e4)
    assert cos.dtype == torch.float32 and cos.shape == (3, 8)
    q = torch.randn(1, 1, 1, 16)
    k = torch.randn(1, 1, 1, 16)

    # Scores depend on the distance only: positions (5, 3) and (105, 103) give the same dot product.
    def score(pq, pk):
        cq, sq = rope_angles(torch.tensor([pq]), 16, 1e4)
        ck, sk = rope_angles(torch.tensor([pk]), 16, 1e4)
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum()

    assert torch.allclose(score(5, 3), score(105, 103), atol=1e-4)
    assert apply_rope(q.bfloat16(), cos[:1], sin[:1]).dtype == torch.bfloat16


def test_hyena_filter_taps_do_not_depend_on_the_length():
    torch.manual_seed(0)
    filt = HyenaFilter(8, order=2, filter_dim=16, pos_dim=5, max_len=100)
    short, long = filt(10, torch.device("cpu")), filt(40, torch.device("cpu"))
    assert short.shape == (2, 8, 10)
    assert torch.allclose(short, long[:, :, :10])
    assert torch.isfinite(long).all()


def test_norms_and_mlp():
    x = torch.randn(2, 5, 8) * 10
    y = RMSNorm(8)(x)
    assert torch.allclose(y.pow(2).mean(-1), torch.ones(2, 5), atol=1e-3)
    assert RMSNorm(8)(x.bfloat16()).dtype == torch.bfloat16
    g = GatedRMSNorm(8, group_size=4)(x, torch.randn(2, 5, 8))
    assert g.shape == x.shape
    h = MultiHeadNorm(2, 4)(x.view(2, 5, 2, 4))
    assert torch.allclose(h.view(2, 5, 2, 4).mean(-1), torch.zeros(2, 5, 2), atol=1e-5)
    assert GatedMLP(8, 20)(x).shape == x.shape


def test_layers_run_in_bf16():
    for kind in CAUSAL:
        layer = make(kind).to(torch.bfloat16)
        y = layer(torch.randn(1, 16, D, dtype=torch.bfloat16))
        assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
