"""short_conv: the explicit-sum reference against nn.Conv1d's layout, the conv1d path against it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genolong.errors import UsageError
from genolong.ops import short_conv
from genolong.ops.short_conv.reference import short_conv_reference
from tests.ops.helpers import assert_close, assert_same_outputs_and_grads


def make(B: int, D: int, L: int, W: int, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, D, L, generator=g).to(dtype)
    w = torch.randn(D, W, generator=g).to(dtype)
    bias = torch.randn(D, generator=g).to(dtype)
    return x, w, bias


@pytest.mark.parametrize("W", [1, 2, 4, 8])
@pytest.mark.parametrize("L", [1, 3, 63])
def test_reference_is_left_padded_depthwise_conv1d(W, L):
    # the weight layout contract: conv.weight[:, 0, :] of nn.Conv1d(D, D, W, groups=D, padding=W-1), truncated
    D = 5
    conv = torch.nn.Conv1d(D, D, W, groups=D, padding=W - 1).double()
    x, _, _ = make(2, D, L, W, seed=W)
    with torch.no_grad():
        expected = conv(x.double())[..., :L]
        got = short_conv_reference(x.double(), conv.weight[:, 0, :], conv.bias)
    assert_close(got, expected, 1e-12, "reference vs nn.Conv1d")


@pytest.mark.parametrize("W", [1, 4, 8])
@pytest.mark.parametrize("L", [1, 5, 63, 1000])
@pytest.mark.parametrize("with_bias", [True, False])
def test_fast_matches_reference(W, L, with_bias):
    x, w, bias = make(2, 3, L, W, seed=L)
    assert_same_outputs_and_grads(
        lambda x, w, b: short_conv(x, w, b, backend="torch"),
        lambda x, w, b: short_conv(x, w, b, backend="reference"),
        [x, w, bias if with_bias else None],
        tol=1e-5,
        names=["x", "w", "bias"],
    )


def test_bf16_inputs():
    x, w, bias = make(2, 4, 63, 4, dtype=torch.bfloat16)
    assert short_conv(x, w, bias).dtype == torch.bfloat16
    assert_same_outputs_and_grads(
        lambda x, w, b: short_conv(x, w, b, backend="torch"),
        lambda x, w, b: short_conv(x, w, b, backend="reference"),
        [x, w, bias],
        tol=2e-2,
        names=["x", "w", "bias"],
    )


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 2), D=st.integers(1, 5), L=st.integers(1, 40), W=st.integers(1, 8))
def test_random_shapes(B, D, L, W):
    x, w, bias = make(B, D, L, W, seed=L * 8 + W)
    assert_same_outputs_and_grads(
        lambda x, w, b: short_conv(x, w, b, backend="torch"),
        short_conv_reference,
        [x, w, bias],
        tol=1e-5,
        names=["x", "w", "bias"],
    )


def test_gradients_of_only_some_inputs():
    # frozen taps or bias (a fine-tuned backbone): the written-out backward computes only what is asked for
    x, w, bias = make(2, 3, 20, 4)
    x.requires_grad_(True)
    (grad_x,) = torch.autograd.grad(short_conv(x, w, bias, backend="torch").square().sum(), x)
    (expected,) = torch.autograd.grad(short_conv_reference(x, w, bias).square().sum(), x)
    assert_close(grad_x, expected, 1e-5, "grad x")
    w.requires_grad_(True)
    (grad_w,) = torch.autograd.grad(short_conv(x.detach(), w, None, backend="torch").square().sum(), w)
    (expected,) = torch.autograd.grad(short_conv_reference(x.detach(), w, None).square().sum(), w)
    assert_close(grad_w, expected, 1e-5, "grad w")
    bias.requires_grad_(True)  # frozen taps, a trainable bias
    (grad_b,) = torch.autograd.grad(short_conv(x.detach(), w.detach(), bias, backend="torch").square().sum(), bias)
    (expected,) = torch.autograd.grad(short_conv_reference(x.detach(), w.detach(), bias).square().sum(), bias)
    assert_close(grad_b, expected, 1e-5, "grad bias")


def test_shape_errors():
    x, w, bias = make(1, 3, 10, 4)
    with pytest.raises(UsageError, match="W <= 8"):
        short_conv(x, torch.randn(3, 9))
    with pytest.raises(UsageError, match="bias"):
        short_conv(x, w, torch.randn(2))
