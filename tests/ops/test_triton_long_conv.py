"""long_conv Triton kernels (FFT as matmuls, gates fused): outputs and gradients against the direct-sum reference,
the spectra against torch.fft, the two-level split, the custom ops and torch.compile.

Without CUDA the kernels run on CPU tensors under the Triton interpreter (TRITON_INTERPRET=1, which
tests/conftest.py sets before triton loads) at small sizes; lowering INNER_MAX to 256 sends sizes above 256
through the two-level (outer DFT, inner FFT, outer inverse) path. With CUDA they run compiled, and the ``gpu``
tests add realistic sizes. Skipped when triton is not installed.
"""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("triton")  # without CUDA, tests/conftest.py has set TRITON_INTERPRET=1 before this import

from genolong.errors import UsageError  # noqa: E402
from genolong.ops import long_conv  # noqa: E402
from genolong.ops.long_conv import triton as lc_triton  # noqa: E402
from genolong.ops.long_conv.fft import long_conv_fft  # noqa: E402
from genolong.ops.long_conv.reference import long_conv_reference  # noqa: E402
from genolong.ops.long_conv.triton import long_conv_triton  # noqa: E402
from tests.ops.helpers import outputs_and_grads_on, scaled_error, triton_run_modes  # noqa: E402

INTERPRETED, CUDA, DEVICES = triton_run_modes(lc_triton._inner_kernel)
NAMES = ["u", "k", "skip", "pre_gate", "post_gate"]


@pytest.fixture(autouse=True)
def poison(monkeypatch):
    """Every buffer the kernels must fill starts as NaN, so unwritten memory shows up in the results."""
    monkeypatch.setattr(lc_triton, "POISON_BUFFERS", True)


@pytest.fixture
def two_level(monkeypatch):
    """FFTs above 256 points split into outer x inner factors (the path of L > 2048 with the default 4096)."""
    monkeypatch.setattr(lc_triton, "INNER_MAX", 256)


def check(fast, ref, inputs, device, tol, grad_tol=None, ref_device="cpu"):
    """fast on ``device`` in the inputs' dtypes against ref in float64: outputs and every gradient."""
    out_f, grad_f = outputs_and_grads_on(fast, inputs, device)
    out_r, grad_r = outputs_and_grads_on(ref, inputs, ref_device, double=True)
    for i, (a, b) in enumerate(zip(out_f, out_r, strict=True)):
        assert a.dtype == inputs[0].dtype, f"output {i} has dtype {a.dtype}"
        err = scaled_error(a, b)
        assert err <= tol, f"output {i}: scaled error {err:.3g} > {tol:.3g}"
    names = [n for n, t in zip(NAMES, inputs, strict=True) if t is not None]
    for name, a, b in zip(names, grad_f, grad_r, strict=True):
        err = scaled_error(a, b)
        assert err <= (grad_tol or tol), f"grad {name}: scaled error {err:.3g} > {grad_tol or tol:.3g}"


def make(B, D, L, Lk, dtype=torch.float32, seed=0, gates=(True, True), skip=True):
    """[u, k, skip, pre_gate, post_gate] with the optional ones None where not asked for."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(B, D, L, generator=g).to(dtype)  # (B, D, L)
    k = (torch.randn(D, Lk, generator=g) / Lk**0.5).to(dtype)  # (D, Lk)
    s = torch.randn(D, generator=g).to(dtype) if skip else None  # (D,)
    pre = torch.randn(B, D, L, generator=g).to(dtype) if gates[0] else None  # (B, D, L)
    post = torch.randn(B, D, L, generator=g).to(dtype) if gates[1] else None  # (B, D, L)
    return [u, k, s, pre, post]


def test_interpreter_is_effective():
    if not torch.cuda.is_available():
        assert os.environ["TRITON_INTERPRET"] == "1" and INTERPRETED


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("L", "Lk"), [(1, 1), (37, 37), (100, 7), (300, 300), (1000, 1000)])
def test_matches_reference_fp32(device, L, Lk):
    # one program per row: FFT sizes 256 (L = 1 .. 100), 1024 and 2048 (16x16 .. 64x32 tiles)
    check(long_conv_triton, long_conv_reference, make(2, 3, L, Lk, seed=L + Lk), device, tol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("gates", "skip"), [((False, False), False), ((True, False), True), ((False, True), False)])
def test_optional_inputs(device, gates, skip):
    check(long_conv_triton, long_conv_reference, make(2, 2, 50, 50, seed=3, gates=gates, skip=skip), device, tol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("L", "Lk"), [(700, 500), (600, 5), (257, 256), (1025, 1000)])
def test_two_level_matches_reference(device, L, Lk, two_level):
    # N = 2048 (8 x 256), 1024 (4 x 256), 512 (2 x 256, F_N1 padded to a 16-row tile), 2048: dk needs only the
    # first Lk outputs, the outer inverse runs over the rows holding outputs only
    check(long_conv_triton, long_conv_reference, make(1, 2, L, Lk, seed=L), device, tol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_two_level_many_outer_tiles(device, two_level, monkeypatch):
    # N = 8192 = 32 x 256 with 16-row outer tiles: two tl.dot steps per outer product, two row tiles
    monkeypatch.setattr(lc_triton, "OUTER_BLOCK", 16)
    check(long_conv_triton, long_conv_reference, make(1, 2, 4100, 300, seed=9), device, tol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_needed", [100, 1000, 3000])
@pytest.mark.parametrize("inner_max", [256, 4096])
def test_spectrum_mode_is_the_rfft(device, n_needed, inner_max, monkeypatch):
    # the kernels' own FFT against torch.fft.rfft (an independent implementation), gated input
    monkeypatch.setattr(lc_triton, "INNER_MAX", inner_max)
    g = torch.Generator().manual_seed(n_needed)
    x, gate = torch.randn(2, 3, min(n_needed, 900), generator=g), torch.randn(2, 3, min(n_needed, 900), generator=g)
    plan = lc_triton._Plan(n_needed, torch.device(device), torch.float32)
    spec = lc_triton._spectrum(plan, x.to(device), gate.to(device)).cpu()  # (6, N/2 + 1, 2)
    expected = torch.view_as_real(torch.fft.rfft((x * gate).double(), n=plan.N)).reshape(6, -1, 2)
    assert scaled_error(spec, expected) < 1e-6


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_inputs(device):
    inputs = make(2, 3, 200, 200, dtype=torch.bfloat16, seed=5)
    assert long_conv_triton(*[t.to(device) for t in inputs]).dtype == torch.bfloat16
    check(long_conv_triton, long_conv_reference, inputs, device, tol=2e-2, grad_tol=3e-2)


@pytest.mark.parametrize("device", DEVICES)
def test_post_gate_without_gradient(device):
    # z is kept for the backward only when the post gate needs a gradient; the others still get theirs
    u, k, s, pre, post = (t.to(device) for t in make(1, 2, 40, 40, seed=6))

    def fast(u, k, s, pre):
        return long_conv_triton(u, k, s, pre, post.to(u.device))

    def ref(u, k, s, pre):
        return long_conv_reference(u, k, s, pre, post.to(u))

    out_f, grad_f = outputs_and_grads_on(fast, [u, k, s, pre], device)
    out_r, grad_r = outputs_and_grads_on(ref, [u, k, s, pre], device, double=True)
    for a, b in zip(out_f + grad_f, out_r + grad_r, strict=True):
        assert scaled_error(a, b) < 1e-5


@pytest.mark.parametrize("device", DEVICES)
def test_public_op_dispatches_to_the_kernels(device, monkeypatch):
    calls = []
    real = lc_triton._run
    monkeypatch.setattr(lc_triton, "_run", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    u, k, s, pre, post = (t.to(device) for t in make(1, 2, 64, 64, seed=7))
    y = long_conv(u, k, s, pre_gate=pre, post_gate=post, backend="triton")
    assert calls, "backend='triton' did not run the kernels"
    assert scaled_error(y.cpu(), long_conv_fft(u, k, s, pre, post).cpu()) < 1e-5


def test_custom_op_registration():
    # schema, fake (meta) implementation and autograd registration are consistent with the real kernels
    u, k, s, pre, post = make(1, 2, 20, 20, seed=8)
    args = [t.requires_grad_(True) for t in (u, k, s, pre, post)]
    torch.library.opcheck(lc_triton._long_conv_fwd, (*args, True))
    z = torch.randn(1, 2, 20)
    torch.library.opcheck(
        lc_triton._long_conv_bwd,
        (torch.randn(1, 2, 20), u.detach(), k.detach(), None, pre.detach(), post.detach(), z),
        test_utils=("test_schema", "test_faketensor"),
    )


@pytest.mark.skipif(not INTERPRETED, reason="aot_eager tracing check at interpreter sizes")
def test_torch_compile_traces_through():
    fn = torch.compile(long_conv_triton, backend="aot_eager", fullgraph=True)
    check(fn, long_conv_reference, make(1, 2, 30, 30, seed=4), "cpu", tol=1e-5)


def test_argument_errors():
    u, k, s, pre, post = make(1, 2, 10, 10)
    with pytest.raises(UsageError, match="float32, bfloat16 or float16"):
        long_conv_triton(u.double(), k.double())
    with pytest.raises(UsageError, match="post_gate has shape"):
        long_conv_triton(u, k, s, pre, post[..., :5])
    with pytest.raises(UsageError, match="pre_gate has shape"):
        long_conv(u, k, s, pre_gate=pre[:, :1], backend="torch")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("L", [2048, 1 << 16])
def test_gpu_realistic_size(dtype, L):
    # Hyena-like: D = 256 channels, a filter as long as the sequence; L = 2^16 takes the two-level path
    # (N = 2^17 = 32 x 4096). Against the torch FFT path in float64 on the GPU.
    inputs = make(2, 256, L, L, dtype=dtype, seed=L)
    tol, grad_tol = (1e-5, 2e-5) if dtype == torch.float32 else (2e-2, 3e-2)
    check(long_conv_triton, long_conv_fft, inputs, "cuda", tol=tol, grad_tol=grad_tol, ref_device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_gpu_two_million_base_filter():
    # L = Lk = 2^21 (N = 2^22 = 1024 x 4096): runs, and matches the torch FFT path on one channel pair
    inputs = make(1, 2, 1 << 21, 1 << 21, seed=21)
    y = long_conv_triton(*[t.cuda() for t in inputs])
    expected = long_conv_fft(*[t.cuda().double() for t in inputs])
    assert scaled_error(y, expected) < 1e-4
