"""long_conv: the direct-sum reference against F.conv1d, the FFT path against both, outputs and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from genolong.errors import UsageError
from genolong.ops import long_conv
from genolong.ops.long_conv.fft import fft_size, long_conv_fft
from genolong.ops.long_conv.reference import long_conv_reference
from tests.ops.helpers import assert_close, assert_same_outputs_and_grads


def conv1d_causal(u: torch.Tensor, k: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
    """The same convolution by torch's direct conv1d (a cross-correlation, hence the flipped kernel)."""
    D, Lk = k.shape
    y = F.conv1d(F.pad(u.double(), (Lk - 1, 0)), k.double().flip(-1)[:, None], groups=D)  # (B, D, L)
    if skip is not None:
        y = y + skip.double()[:, None] * u.double()
    return y


def make(B: int, D: int, L: int, Lk: int, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(B, D, L, generator=g).to(dtype)
    k = (torch.randn(D, Lk, generator=g) / Lk**0.5).to(dtype)
    skip = torch.randn(D, generator=g).to(dtype)
    return u, k, skip


@pytest.mark.parametrize(("L", "Lk"), [(1, 1), (63, 63), (63, 5), (1000, 1000), (1000, 17)])
def test_reference_matches_conv1d(L, Lk):
    u, k, skip = make(2, 3, L, Lk)
    assert_close(long_conv_reference(u, k, skip), conv1d_causal(u, k, skip), 1e-5, "reference vs conv1d")
    assert_close(long_conv_reference(u, k, None), conv1d_causal(u, k, None), 1e-5, "no skip")


@pytest.mark.parametrize(("L", "Lk"), [(1, 1), (63, 63), (63, 5), (1000, 1000), (1000, 17), (257, 256)])
def test_fft_matches_conv1d(L, Lk):
    u, k, skip = make(2, 3, L, Lk, seed=1)
    assert_close(long_conv_fft(u, k, skip), conv1d_causal(u, k, skip), 1e-5, "fft vs conv1d")


@pytest.mark.parametrize(("L", "Lk"), [(1, 1), (63, 40), (300, 300)])
@pytest.mark.parametrize("with_skip", [True, False])
def test_fft_grads_match_reference(L, Lk, with_skip):
    u, k, skip = make(2, 3, L, Lk, seed=2)
    assert_same_outputs_and_grads(
        lambda u, k, s: long_conv(u, k, s, backend="torch"),
        lambda u, k, s: long_conv(u, k, s, backend="reference"),
        [u, k, skip if with_skip else None],
        tol=1e-5,
        names=["u", "k", "skip"],
    )


@pytest.mark.parametrize(("L", "Lk"), [(63, 63), (300, 17)])
@pytest.mark.parametrize("gates", [(True, True), (True, False), (False, True)])
def test_gates_match_plain_multiplies(L, Lk, gates):
    """post_gate·conv(pre_gate·u) by conv1d (independent), and the FFT path's gradients against the reference."""
    u, k, skip = make(2, 3, L, Lk, dtype=torch.float64, seed=L)
    g = torch.Generator().manual_seed(Lk)
    pre = torch.randn(2, 3, L, generator=g, dtype=torch.float64) if gates[0] else None
    post = torch.randn(2, 3, L, generator=g, dtype=torch.float64) if gates[1] else None
    expected = conv1d_causal(u if pre is None else u * pre, k, skip)
    expected = expected if post is None else expected * post
    assert_close(long_conv_reference(u, k, skip, pre, post), expected, 1e-10, "reference vs conv1d")
    inputs = [t for t in (u, k, skip, pre, post) if t is not None]

    def call(backend):
        def fn(u, k, skip, *gate_tensors):
            given = iter(gate_tensors)
            return long_conv(
                u, k, skip, pre_gate=next(given) if gates[0] else None,
                post_gate=next(given) if gates[1] else None, backend=backend,
            )  # fmt: skip

        return fn

    assert_same_outputs_and_grads(call("torch"), call("reference"), inputs, tol=1e-10)


@pytest.mark.parametrize(("L", "Lk"), [(63, 63), (200, 31)])
def test_bf16_inputs(L, Lk):
    u, k, skip = make(2, 4, L, Lk, dtype=torch.bfloat16, seed=3)
    y = long_conv(u, k, skip)
    assert y.dtype == torch.bfloat16
    assert_same_outputs_and_grads(
        lambda u, k, s: long_conv(u, k, s, backend="torch"),
        lambda u, k, s: long_conv(u, k, s, backend="reference"),
        [u, k, skip],
        tol=2e-2,
        names=["u", "k", "skip"],
    )


def test_causal():
    u, k, skip = make(1, 2, 100, 100, seed=4)
    u2 = u.clone()
    u2[..., 60:] = torch.randn(1, 2, 40)
    assert_close(long_conv(u2, k, skip)[..., :60], long_conv(u, k, skip)[..., :60], 1e-6, "prefix")


@settings(max_examples=25, deadline=None)
@given(
    B=st.integers(1, 2),
    D=st.integers(1, 4),
    L=st.integers(1, 130),
    frac=st.floats(0.0, 1.0),
    with_skip=st.booleans(),
)
def test_random_shapes(B, D, L, frac, with_skip):
    Lk = max(1, round(frac * L))
    u, k, skip = make(B, D, L, Lk, seed=L)
    skip = skip if with_skip else None
    assert_close(long_conv(u, k, skip), conv1d_causal(u, k, skip), 1e-5, "fft vs conv1d")


@given(n=st.integers(1, 1 << 20))
def test_fft_size_is_smooth_and_big_enough(n):
    m = fft_size(n)
    assert n <= m <= 2 * n or m == 1
    for p in (2, 3, 5):
        while m % p == 0:
            m //= p
    assert m == 1


def test_shape_errors():
    u, k, skip = make(1, 3, 10, 10)
    with pytest.raises(UsageError, match="long_conv"):
        long_conv(u, torch.randn(3, 11))  # Lk > L
    with pytest.raises(UsageError, match="long_conv"):
        long_conv(u, torch.randn(2, 5))
    with pytest.raises(UsageError, match="skip"):
        long_conv(u, k, torch.randn(4))


@pytest.mark.parametrize(("L", "Lk", "n"), [(1, 1, 1), (40, 40, 1), (40, 40, 7), (40, 9, 32), (100, 100, 33)])
def test_tail_is_the_last_outputs_of_the_full_convolution(L, Lk, n):
    """long_conv_tail (direct sums for n <= 32, FFT above) == the last n outputs, values and gradients."""
    from genolong.ops import long_conv_tail

    u, k, skip = make(2, 3, L, Lk, dtype=torch.float64, seed=n)
    assert_same_outputs_and_grads(
        lambda u, k, s: long_conv_tail(u, k, s, n=n), lambda u, k, s: conv1d_causal(u, k, s)[..., -n:],
        (u, k, skip), 1e-10, names=("u", "k", "skip"),
    )  # fmt: skip
    with pytest.raises(UsageError, match="n must be"):
        long_conv_tail(u, k, skip, n=L + 1)
