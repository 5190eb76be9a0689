"""Every op, every backend: float32 accumulation under autocast, and no output read from unwritten memory."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genolong.ops import long_conv, mlstm, short_conv, ssd_scan
from tests.ops.helpers import assert_close


def cases():
    """(name, fn(backend) -> output tensor) with odd lengths and chunk sizes that do not divide them."""
    g = torch.Generator().manual_seed(0)
    L = 77
    u, k = torch.randn(2, 5, L, generator=g), torch.randn(5, 40, generator=g) / 6
    x, dt = torch.randn(2, L, 4, 3, generator=g), F.softplus(torch.randn(2, L, 4, generator=g))
    A = -torch.rand(4, generator=g)
    B, C = torch.randn(2, L, 2, 5, generator=g), torch.randn(2, L, 2, 5, generator=g)
    q, kk, v = (torch.randn(2, 2, L, 4, generator=g) for _ in range(3))
    ig, fg = torch.randn(2, 2, L, generator=g), torch.randn(2, 2, L, generator=g) + 2
    return [
        ("long_conv", lambda b: long_conv(u, k, torch.ones(5), backend=b)),
        ("short_conv", lambda b: short_conv(u, k[:, :4], torch.ones(5), backend=b)),
        ("ssd_scan", lambda b: ssd_scan(x, dt, A, B, C, torch.ones(4), chunk_size=16, backend=b)),
        ("mlstm", lambda b: mlstm(q, kk, v, ig, fg, chunk_size=16, backend=b)),
    ]


CASES = cases()


@pytest.mark.parametrize(("op", "call"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_autocast_does_not_lower_precision(op, call, backend):
    expected = call(backend)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = call(backend)
    assert got.dtype == torch.float32
    assert_close(got, expected, 1e-6, f"{op} under autocast")


@pytest.fixture
def nan_filled_allocations(monkeypatch):
    """torch.empty / empty_like / new_empty return NaN-filled memory, so an unwritten output shows up."""
    real_empty, real_empty_like, real_new_empty = torch.empty, torch.empty_like, torch.Tensor.new_empty

    def poison(t):
        return t.fill_(float("nan")) if t.is_floating_point() or t.is_complex() else t

    monkeypatch.setattr(torch, "empty", lambda *a, **kw: poison(real_empty(*a, **kw)))
    monkeypatch.setattr(torch, "empty_like", lambda *a, **kw: poison(real_empty_like(*a, **kw)))
    monkeypatch.setattr(torch.Tensor, "new_empty", lambda t, *a, **kw: poison(real_new_empty(t, *a, **kw)))


@pytest.mark.parametrize(("op", "call"), CASES, ids=[c[0] for c in CASES])
def test_outputs_never_come_from_unwritten_memory(op, call, nan_filled_allocations):
    out = call("torch")
    assert torch.isfinite(out).all(), op
    assert_close(out, call("reference"), 1e-5, op)
