"""ssd_scan: the chunked path against the step-by-step recurrence (outputs, final state, every gradient)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from genolong.errors import UsageError
from genolong.ops import ssd_scan
from tests.ops.helpers import assert_close, assert_same_outputs_and_grads

NAMES = ["x", "dt", "A", "B", "C", "D", "initial_state"]


def make(Bt=2, L=63, H=4, G=2, P=3, N=5, dtype=torch.float32, seed=0, with_D=True, with_state=True):
    """Inputs as a Mamba2 layer makes them: dt = softplus(.) > 0, A = -exp(.) < 0."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(Bt, L, H, P, generator=g)
    dt = F.softplus(torch.randn(Bt, L, H, generator=g) - 1.0)
    A = -torch.exp(torch.randn(H, generator=g))
    B = torch.randn(Bt, L, G, N, generator=g)
    C = torch.randn(Bt, L, G, N, generator=g)
    D = torch.randn(H, generator=g) if with_D else None
    S0 = torch.randn(Bt, H, P, N, generator=g) if with_state else None
    return [t.to(dtype) if t is not None else None for t in (x, dt, A, B, C, D, S0)]


def fast(chunk_size):
    return lambda *a: ssd_scan(*a, return_final_state=True, chunk_size=chunk_size, backend="torch")


def ref(*a):
    return ssd_scan(*a, return_final_state=True, backend="reference")


@pytest.mark.parametrize(
    ("L", "chunk_size"),
    [(1, 1), (1, 64), (63, 1), (63, 16), (63, 64), (63, 100), (200, 32), (1000, 37), (1000, 64)],
)
def test_chunked_matches_reference(L, chunk_size):
    inputs = make(L=L, seed=L + chunk_size)
    assert_same_outputs_and_grads(fast(chunk_size), ref, inputs, tol=2e-5, grad_tol=5e-5, names=NAMES)


@pytest.mark.parametrize(("H", "G"), [(4, 1), (4, 2), (3, 3), (6, 2)])
@pytest.mark.parametrize(("with_D", "with_state"), [(True, True), (False, False)])
def test_grouped_heads_and_optional_inputs(H, G, with_D, with_state):
    inputs = make(L=50, H=H, G=G, seed=H * 10 + G, with_D=with_D, with_state=with_state)
    assert_same_outputs_and_grads(fast(16), ref, inputs, tol=2e-5, grad_tol=5e-5, names=NAMES)


def test_float64_is_exact():
    inputs = make(L=77, dtype=torch.float64, seed=5)
    assert_same_outputs_and_grads(fast(16), ref, inputs, tol=1e-11, names=NAMES)
    y, S = ssd_scan(*inputs, return_final_state=True)
    assert y.dtype == S.dtype == torch.float64


@pytest.mark.parametrize(("L", "chunk_size"), [(63, 16), (130, 64)])
def test_bf16_inputs(L, chunk_size):
    inputs = make(L=L, dtype=torch.bfloat16, seed=6)
    y, S = ssd_scan(*inputs, return_final_state=True)
    assert y.dtype == torch.bfloat16 and S.dtype == torch.float32
    assert_same_outputs_and_grads(fast(chunk_size), ref, inputs, tol=2e-2, names=NAMES)


@pytest.mark.parametrize("backend", ["torch", "reference"])
@pytest.mark.parametrize("split", [1, 20, 64])
def test_state_passing_equals_one_pass(backend, split):
    x, dt, A, B, C, D, S0 = make(L=90, seed=7)
    y, S = ssd_scan(x, dt, A, B, C, D, S0, True, chunk_size=16, backend=backend)
    first = slice(0, split)
    second = slice(split, None)
    y1, S1 = ssd_scan(
        x[:, first], dt[:, first], A, B[:, first], C[:, first], D, S0, True, chunk_size=16, backend=backend
    )
    y2, S2 = ssd_scan(
        x[:, second],
        dt[:, second],
        A,
        B[:, second],
        C[:, second],
        D,
        S1,
        True,
        chunk_size=16,
        backend=backend,
    )
    assert_close(torch.cat([y1, y2], dim=1), y, 1e-5, "outputs")
    assert_close(S2, S, 1e-5, "final state")


def test_causal():
    x, dt, A, B, C, D, S0 = make(L=100, seed=8)
    x2 = x.clone()
    x2[:, 70:] += 1.0
    y = ssd_scan(x, dt, A, B, C, D, S0, chunk_size=32)
    y2 = ssd_scan(x2, dt, A, B, C, D, S0, chunk_size=32)
    assert torch.equal(y[:, :70], y2[:, :70])


@settings(max_examples=20, deadline=None)
@given(
    Bt=st.integers(1, 2),
    L=st.integers(1, 80),
    G=st.integers(1, 2),
    R=st.integers(1, 3),
    P=st.integers(1, 4),
    N=st.integers(1, 4),
    chunk_size=st.integers(1, 96),
)
def test_random_shapes(Bt, L, G, R, P, N, chunk_size):
    inputs = make(Bt=Bt, L=L, H=G * R, G=G, P=P, N=N, seed=L * 97 + chunk_size)
    assert_same_outputs_and_grads(fast(chunk_size), ref, inputs, tol=2e-5, grad_tol=5e-5, names=NAMES)


def test_shape_errors():
    x, dt, A, B, C, D, S0 = make(H=4, G=2)
    with pytest.raises(UsageError, match="multiple of the number of B/C groups"):
        ssd_scan(x, dt, A, B[:, :, :1].expand(-1, -1, 3, -1), C[:, :, :1].expand(-1, -1, 3, -1))
    with pytest.raises(UsageError, match="dt"):
        ssd_scan(x, dt[:, :-1], A, B, C)
    with pytest.raises(UsageError, match="initial_state"):
        ssd_scan(x, dt, A, B, C, D, S0[:, :2])
    with pytest.raises(UsageError, match="chunk_size"):
        ssd_scan(x, dt, A, B, C, chunk_size=0)
