"""ssd_scan Triton kernels: outputs and gradients against the step-by-step reference, state passing.

Without CUDA the kernels run on CPU tensors under the Triton interpreter (TRITON_INTERPRET=1, which
tests/conftest.py sets before triton loads) at tiny sizes; with CUDA they run compiled, and the ``gpu`` tests add
realistic sizes. Skipped when triton is not installed.
"""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("triton")  # without CUDA, tests/conftest.py has set TRITON_INTERPRET=1 before this import

import torch.nn.functional as F  # noqa: E402

from genolong.errors import UsageError  # noqa: E402
from genolong.ops.ssd import triton as ssd_triton  # noqa: E402
from genolong.ops.ssd.chunked import ssd_scan_chunked  # noqa: E402
from genolong.ops.ssd.reference import ssd_scan_reference  # noqa: E402
from genolong.ops.ssd.triton import ssd_scan_triton  # noqa: E402
from tests.ops.helpers import outputs_and_grads_on, scaled_error, triton_run_modes  # noqa: E402

INTERPRETED, CUDA, DEVICES = triton_run_modes(ssd_triton._ssd_chunk_output_kernel)
NAMES = ["x", "dt", "A", "B", "C", "D", "initial_state"]


@pytest.fixture(autouse=True)
def poison(monkeypatch):
    """Every buffer the kernels must fill starts as NaN, so unwritten memory shows up in the results."""
    monkeypatch.setattr(ssd_triton, "POISON_BUFFERS", True)


def check(fast, ref, inputs, device, tol, grad_tol=None, ref_device="cpu", names=None):
    """fast on ``device`` in the inputs' dtypes against ref in float64: outputs and every gradient."""
    out_f, grad_f = outputs_and_grads_on(fast, inputs, device)
    out_r, grad_r = outputs_and_grads_on(ref, inputs, ref_device, double=True)
    for i, (a, b) in enumerate(zip(out_f, out_r, strict=True)):
        err = scaled_error(a, b)
        assert err <= tol, f"output {i}: scaled error {err:.3g} > {tol:.3g}"
    names = names or [n for n, t in zip(NAMES, inputs, strict=False) if t is not None]
    for name, a, b in zip(names, grad_f, grad_r, strict=True):
        err = scaled_error(a, b)
        assert err <= (grad_tol or tol), f"grad {name}: scaled error {err:.3g} > {grad_tol or tol:.3g}"


def make(Bt, L, H, P, G, N, dtype=torch.float32, seed=0, decay=1.0):
    """Random SSD inputs [x, dt, A, B, C, D, initial_state]; ``decay`` scales dt (stronger forgetting)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(Bt, L, H, P, generator=g).to(dtype)  # (Bt, L, H, P)
    dt = (F.softplus(torch.randn(Bt, L, H, generator=g) - 1.0) * decay).to(dtype)  # (Bt, L, H) positive
    A = -(torch.rand(H, generator=g) + 0.2)  # (H,) negative, float32 as in Mamba2
    B = torch.randn(Bt, L, G, N, generator=g).to(dtype)  # (Bt, L, G, N)
    C = torch.randn(Bt, L, G, N, generator=g).to(dtype)  # (Bt, L, G, N)
    D = torch.randn(H, generator=g)  # (H,)
    S0 = torch.randn(Bt, H, P, N, generator=g)  # (Bt, H, P, N) float32
    return [x, dt, A, B, C, D, S0]


def triton_fn(chunk_size, final=True):
    return lambda *a: ssd_scan_triton(*a, return_final_state=final, chunk_size=chunk_size)


def reference_fn(final=True):
    return lambda *a: ssd_scan_reference(*a, return_final_state=final)


def test_interpreter_is_effective():
    if not torch.cuda.is_available():
        assert os.environ["TRITON_INTERPRET"] == "1" and INTERPRETED


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("L", "chunk", "G"),
    [(1, 16, 2), (7, 16, 1), (63, 16, 2), (63, 64, 2), (40, 17, 2), (33, 32, 1)],
)
def test_matches_reference_fp32(device, L, chunk, G):
    # chunk 17 is not a power of two (masked rows in a 32-row tile); 63 and 33 are not multiples of the chunk
    inputs = make(1, L, 2, 8, G, 12, seed=L * 7 + chunk)
    check(triton_fn(chunk), reference_fn(), inputs, device, tol=1e-5, grad_tol=2e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_without_optional_inputs(device):
    # no D, no initial state, y only: the gradients of x, dt, A, B, C alone
    inputs = make(1, 21, 2, 8, 2, 12, seed=3)[:5]
    check(triton_fn(16, final=False), reference_fn(final=False), inputs, device, tol=1e-5, grad_tol=2e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_many_tiles(device, monkeypatch):
    # 16-column N tiles (N = 40: three, the last masked) and 64-element state-pass slices (P·N = 320: five)
    monkeypatch.setattr(ssd_triton, "MAX_BLOCK_N", 16)
    monkeypatch.setattr(ssd_triton, "BLOCK_S", 64)
    inputs = make(1, 37, 2, 8, 2, 40, seed=8)
    check(triton_fn(16), reference_fn(), inputs, device, tol=1e-5, grad_tol=2e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_of_the_final_state_alone(device):
    # y unused: its gradient reaches backward as None (C and D only act on y: not differentiated here)
    x, dt, A, B, C, D, S0 = make(1, 20, 2, 8, 1, 12, seed=10)
    names = ["x", "dt", "A", "B", "initial_state"]

    def fast(x, dt, A, B, S0):
        return ssd_scan_triton(x, dt, A, B, C.to(x.device), D.to(x.device), S0, True, chunk_size=16)[1]

    def ref(x, dt, A, B, S0):
        return ssd_scan_reference(x, dt, A, B, C.to(x), D.to(x), S0, True)[1]

    check(fast, ref, [x, dt, A, B, S0], device, tol=1e-5, grad_tol=2e-5, names=names)


@pytest.mark.parametrize("device", DEVICES)
def test_strong_decay_stays_finite(device):
    # dt·A down to about -60 per step: every exponent the kernels take is <= 0, nothing overflows
    # (dA sums dt·da over steps whose terms nearly cancel here: float32 rounding reaches ~4e-5 of its size)
    inputs = make(1, 40, 2, 8, 1, 12, seed=4, decay=40.0)
    check(triton_fn(32), reference_fn(), inputs, device, tol=1e-5, grad_tol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_inputs(device):
    inputs = make(1, 63, 2, 16, 1, 16, dtype=torch.bfloat16, seed=5)
    out = ssd_scan_triton(*[t.to(device) for t in inputs], return_final_state=True, chunk_size=32)
    assert out[0].dtype == torch.bfloat16 and out[1].dtype == torch.float32
    check(triton_fn(32), reference_fn(), inputs, device, tol=2e-2, grad_tol=3e-2)


@pytest.mark.parametrize("device", DEVICES)
def test_state_passing_equals_one_pass(device):
    x, dt, A, B, C, D, S0 = (t.to(device) for t in make(1, 50, 2, 8, 1, 12, seed=6))
    whole, final = ssd_scan_triton(x, dt, A, B, C, D, S0, return_final_state=True, chunk_size=16)
    cut = 21  # not a chunk boundary
    first, mid = ssd_scan_triton(
        x[:, :cut], dt[:, :cut], A, B[:, :cut], C[:, :cut], D, S0, return_final_state=True, chunk_size=16
    )
    second, last = ssd_scan_triton(
        x[:, cut:], dt[:, cut:], A, B[:, cut:], C[:, cut:], D, mid, return_final_state=True, chunk_size=16
    )
    assert scaled_error(torch.cat([first, second], dim=1).cpu(), whole.cpu()) < 1e-5
    assert scaled_error(last.cpu(), final.cpu()) < 1e-5


def test_custom_op_registration():
    # schema, fake (meta) implementation and autograd registration are consistent with the real kernels
    x, dt, A, B, C, D, S0 = make(1, 20, 2, 8, 1, 12, seed=11)
    args = [t.requires_grad_(True) for t in (x, dt, A, B, C, D, S0)]
    torch.library.opcheck(ssd_triton._ssd_scan_fwd, (*args, 16))
    torch.library.opcheck(
        ssd_triton._ssd_scan_bwd,
        (torch.randn(1, 20, 2, 8), None, *(t.detach() for t in args), 16),
        test_utils=("test_schema", "test_faketensor"),
    )


@pytest.mark.skipif(not INTERPRETED, reason="aot_eager tracing check at interpreter sizes")
def test_torch_compile_traces_through():
    fn = torch.compile(triton_fn(16), backend="aot_eager", fullgraph=True)
    check(fn, reference_fn(), make(1, 20, 2, 8, 1, 12, seed=12), "cpu", tol=1e-5, grad_tol=2e-5)


def test_argument_errors():
    x, dt, A, B, C, D, S0 = make(1, 8, 2, 4, 1, 4)
    with pytest.raises(UsageError, match="H % G"):
        ssd_scan_triton(x, dt, A, torch.randn(1, 8, 3, 4), torch.randn(1, 8, 3, 4))
    with pytest.raises(UsageError, match="dt has shape"):
        ssd_scan_triton(x, dt[:, :4], A, B, C)
    with pytest.raises(UsageError, match="chunk_size"):
        ssd_scan_triton(x, dt, A, B, C, chunk_size=0)
    with pytest.raises(UsageError, match="float32, bfloat16 or float16"):
        ssd_scan_triton(x.double(), dt, A, B, C)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_realistic_size(dtype):
    # Mamba2-like heads (P = 64, N = 128, one B/C group), L = 4096 in 64-step chunks, against the chunked
    # torch path in float64 on the GPU
    inputs = make(2, 4096, 8, 64, 1, 128, dtype=dtype, seed=7)
    tol, grad_tol = (1e-4, 1e-4) if dtype == torch.float32 else (2e-2, 3e-2)
    check(
        triton_fn(64),
        lambda *a: ssd_scan_chunked(*a, return_final_state=True, chunk_size=64),
        inputs,
        "cuda",
        tol=tol,
        grad_tol=grad_tol,
        ref_device="cuda",
    )
