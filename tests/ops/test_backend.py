"""Backend dispatch: auto picks torch on CPU, an explicit triton never falls back, reference is selectable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import genolong.ops._backend as backend_mod
from genolong.errors import UsageError
from genolong.ops import long_conv, mlstm, short_conv, ssd_scan
from genolong.ops._backend import select_backend


def small_calls():
    """One small call per public op, as (name, fn(backend) -> output)."""
    u, k = torch.randn(1, 2, 8), torch.randn(2, 8)
    x, dt, A = torch.randn(1, 8, 2, 3), torch.rand(1, 8, 2), -torch.rand(2)
    B = C = torch.randn(1, 8, 1, 4)
    q = kk = torch.randn(1, 1, 8, 4)
    v, ig, fg = torch.randn(1, 1, 8, 3), torch.randn(1, 1, 8), torch.randn(1, 1, 8)
    return [
        ("long_conv", lambda b: long_conv(u, k, backend=b)),
        ("short_conv", lambda b: short_conv(u, k[:, :4], backend=b)),
        ("ssd_scan", lambda b: ssd_scan(x, dt, A, B, C, backend=b)),
        ("mlstm", lambda b: mlstm(q, kk, v, ig, fg, backend=b)),
    ]


CALLS = small_calls()


@pytest.mark.parametrize(("op", "call"), CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("interpret", ["0", "1"])
def test_explicit_triton_raises_a_clear_error(op, call, interpret, monkeypatch):
    # every kernel needs CUDA tensors or the interpreter
    monkeypatch.setenv("TRITON_INTERPRET", interpret)
    if interpret == "1":
        pytest.skip("runs the kernel under the interpreter: tests/ops/test_triton_*.py")
    with pytest.raises(UsageError, match=rf"{op}\(backend='triton'\).*needs CUDA tensors") as info:
        call("triton")
    assert info.value.exit_code == 2


@pytest.mark.parametrize(("op", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_backends_agree_and_unknown_is_refused(op, call):
    torch.testing.assert_close(call("auto"), call("reference"), atol=1e-5, rtol=1e-5)
    with pytest.raises(UsageError, match="unknown backend"):
        call("cuda")


def test_auto_on_cpu_picks_torch_even_with_a_validated_kernel(monkeypatch):
    cpu = torch.zeros(1)
    assert select_backend("ssd_scan", "auto", cpu, None) == "torch"
    monkeypatch.setattr(backend_mod, "GPU_VALIDATED_KERNELS", frozenset({"ssd_scan"}))
    assert select_backend("ssd_scan", "auto", cpu, None) == "torch"


def test_auto_on_cpu_runs_the_torch_path(monkeypatch):
    ssd_pkg = sys.modules["genolong.ops.ssd"]
    calls = []
    real = ssd_pkg.ssd_scan_chunked
    monkeypatch.setattr(ssd_pkg, "ssd_scan_chunked", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    CALLS[2][1]("auto")
    assert calls == [1]


def test_explicit_triton_on_cpu_needs_the_interpreter(monkeypatch):
    # CPU tensors without TRITON_INTERPRET=1 are refused, with it they are accepted
    monkeypatch.setattr(backend_mod, "triton_importable", lambda: True)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(UsageError, match=r"ssd_scan\(backend='triton'\) needs CUDA tensors"):
        select_backend("ssd_scan", "triton", torch.zeros(1))
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert select_backend("ssd_scan", "triton", torch.zeros(1)) == "triton"


def test_ops_import_without_triton_or_heavy_dependencies():
    code = textwrap.dedent(
        """
        import sys
        for name in ("triton", "pysam", "pyfaidx", "lightning"):
            sys.modules[name] = None  # any import of them now fails
        import torch
        from genolong.ops import long_conv, mlstm, short_conv, ssd_scan
        y = ssd_scan(torch.randn(1, 5, 2, 3), torch.rand(1, 5, 2), -torch.rand(2),
                     torch.randn(1, 5, 1, 4), torch.randn(1, 5, 1, 4))
        print(tuple(y.shape))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 5, 2, 3)"
