"""mlstm Triton kernels: outputs, final states and gradients against the stabilized step-by-step reference.

Without CUDA the kernels run on CPU tensors under the Triton interpreter (TRITON_INTERPRET=1, which
tests/conftest.py sets before triton loads) at tiny sizes; with CUDA they run compiled, and the ``gpu`` tests add
realistic sizes. Skipped when triton is not installed.
"""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("triton")  # without CUDA, tests/conftest.py has set TRITON_INTERPRET=1 before this import

from genolong.errors import UsageError  # noqa: E402
from genolong.ops.mlstm import triton as mlstm_triton_mod  # noqa: E402
from genolong.ops.mlstm.chunked import mlstm_chunked  # noqa: E402
from genolong.ops.mlstm.reference import mlstm_reference  # noqa: E402
from genolong.ops.mlstm.triton import mlstm_triton  # noqa: E402
from tests.ops.helpers import outputs_and_grads_on, scaled_error, triton_run_modes  # noqa: E402

INTERPRETED, CUDA, DEVICES = triton_run_modes(mlstm_triton_mod._mlstm_chunk_output_kernel)
NAMES = ["q", "k", "v", "i_pre", "f_pre", "C0", "n0", "m0"]


@pytest.fixture(autouse=True)
def poison(monkeypatch):
    """Every buffer the kernels must fill starts as NaN, so unwritten memory shows up in the results."""
    monkeypatch.setattr(mlstm_triton_mod, "POISON_BUFFERS", True)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|: for outputs far below 1, where scaled_error would pass anything."""
    assert torch.isfinite(a).all(), "non-finite values"
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


def check(fast, ref, inputs, device, tol, grad_tol=None, ref_device="cpu", names=None, error=scaled_error):
    """fast on ``device`` in the inputs' dtypes against ref in float64: outputs and every gradient."""
    out_f, grad_f = outputs_and_grads_on(fast, inputs, device)
    out_r, grad_r = outputs_and_grads_on(ref, inputs, ref_device, double=True)
    for i, (a, b) in enumerate(zip(out_f, out_r, strict=True)):
        err = error(a, b)
        assert err <= tol, f"output {i}: error {err:.3g} > {tol:.3g}"
    names = names or [n for n, t in zip(NAMES, inputs, strict=False) if t is not None]
    for name, a, b in zip(names, grad_f, grad_r, strict=True):
        err = error(a, b)
        assert err <= (grad_tol or tol), f"grad {name}: error {err:.3g} > {grad_tol or tol:.3g}"


def make(B, H, L, Dk, Dv, dtype=torch.float32, seed=0, i_shift=0.0, f_shift=2.0, f_scale=1.0):
    """Random inputs [q, k, v, i_pre, f_pre, C0, n0, m0]; the state is float32, as the op returns it."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, L, Dk, generator=g).to(dtype)  # (B, H, L, Dk)
    k = torch.randn(B, H, L, Dk, generator=g).to(dtype)  # (B, H, L, Dk)
    v = torch.randn(B, H, L, Dv, generator=g).to(dtype)  # (B, H, L, Dv)
    i_pre = (torch.randn(B, H, L, generator=g) + i_shift).to(dtype)  # (B, H, L)
    f_pre = (torch.randn(B, H, L, generator=g) * f_scale + f_shift).to(dtype)  # (B, H, L)
    C0 = 0.3 * torch.randn(B, H, Dv, Dk, generator=g)  # (B, H, Dv, Dk)
    n0 = 0.3 * torch.randn(B, H, Dk, generator=g)  # (B, H, Dk)
    m0 = torch.randn(B, H, generator=g)  # (B, H)
    return [q, k, v, i_pre, f_pre, C0, n0, m0]


def triton_fn(chunk_size, final=True):
    def fn(q, k, v, i, f, C0=None, n0=None, m0=None):
        state = (C0, n0, m0) if C0 is not None else None
        return mlstm_triton(q, k, v, i, f, state, return_final_state=final, chunk_size=chunk_size)

    return fn


def reference_fn(final=True):
    def fn(q, k, v, i, f, C0=None, n0=None, m0=None):
        state = (C0, n0, m0) if C0 is not None else None
        return mlstm_reference(q, k, v, i, f, state, return_final_state=final)

    return fn


def test_interpreter_is_effective():
    if not torch.cuda.is_available():
        assert os.environ["TRITON_INTERPRET"] == "1" and INTERPRETED


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("L", "chunk"), [(1, 16), (7, 16), (63, 16), (40, 17), (33, 32)])
def test_matches_reference_fp32(device, L, chunk):
    # initial state in, final (C, n, m) out: gradients of every input, the initial m included
    inputs = make(1, 2, L, 8, 12, seed=L * 3 + chunk)
    check(triton_fn(chunk), reference_fn(), inputs, device, tol=1e-5, grad_tol=2e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_without_state(device):
    inputs = make(1, 2, 21, 8, 12, seed=2)[:5]
    check(triton_fn(16, final=False), reference_fn(final=False), inputs, device, tol=1e-5, grad_tol=2e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_many_tiles(device, monkeypatch):
    # 16-column Dv tiles (Dv = 40: three, the last masked) and 64-element state-pass slices (Dv·Dk = 320)
    monkeypatch.setattr(mlstm_triton_mod, "MAX_BLOCK_DV", 16)
    monkeypatch.setattr(mlstm_triton_mod, "BLOCK_S", 64)
    inputs = make(1, 2, 37, 8, 40, seed=8)
    check(triton_fn(16), reference_fn(), inputs, device, tol=1e-5, grad_tol=2e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_of_the_final_state_alone(device):
    # h unused (its gradient reaches backward as None): C, n and m, m's argmax path included; q only acts on h
    q, *rest = make(1, 2, 20, 8, 12, seed=10)
    names = ["k", "v", "i_pre", "f_pre", "C0", "n0", "m0"]

    def fast(k, v, i, f, C0, n0, m0):
        return mlstm_triton(q.to(k.device), k, v, i, f, (C0, n0, m0), True, chunk_size=16)[1]

    def ref(k, v, i, f, C0, n0, m0):
        return mlstm_reference(q.to(k), k, v, i, f, (C0, n0, m0), True)[1]

    check(fast, ref, rest, device, tol=1e-5, grad_tol=2e-5, names=names)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("gates", "i_shift", "f_shift", "f_scale"),
    [
        ("strong forgetting", 0.0, -6.0, 3.0),
        ("large input gates", 10.0, 0.0, 1.0),
        ("m below -60", -70.0, 3.0, 1.0),
    ],
)
def test_extreme_gates(device, gates, i_shift, f_shift, f_scale):
    # the stabilizer's regimes: f near 0, m dominated by large i, and exp(-m) evaluated at the -60 floor
    # (outputs there are ~e^-70, so the comparison is relative to the largest value, not to 1)
    inputs = make(1, 2, 40, 8, 12, seed=9, i_shift=i_shift, f_shift=f_shift, f_scale=f_scale)[:5]
    error = relative_error if i_shift < -60 else scaled_error
    check(triton_fn(16), reference_fn(), inputs, device, tol=2e-5, grad_tol=2e-5, error=error)


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_inputs(device):
    inputs = make(1, 2, 63, 16, 16, dtype=torch.bfloat16, seed=5)
    h, (C, n, m) = mlstm_triton(*[t.to(device) for t in inputs[:5]], return_final_state=True, chunk_size=32)
    assert h.dtype == torch.bfloat16 and C.dtype == n.dtype == m.dtype == torch.float32
    check(triton_fn(32), reference_fn(), inputs, device, tol=2e-2, grad_tol=3e-2)


@pytest.mark.parametrize("device", DEVICES)
def test_state_passing_equals_one_pass(device):
    q, k, v, i, f, C0, n0, m0 = (t.to(device) for t in make(1, 2, 50, 8, 12, seed=6))
    whole, final = mlstm_triton(q, k, v, i, f, (C0, n0, m0), return_final_state=True, chunk_size=16)
    cut = 21  # not a chunk boundary
    first, mid = mlstm_triton(
        q[:, :, :cut], k[:, :, :cut], v[:, :, :cut], i[:, :, :cut], f[:, :, :cut], (C0, n0, m0), True, 16
    )
    second, last = mlstm_triton(
        q[:, :, cut:], k[:, :, cut:], v[:, :, cut:], i[:, :, cut:], f[:, :, cut:], mid, True, 16
    )
    assert scaled_error(torch.cat([first, second], dim=2).cpu(), whole.cpu()) < 1e-5
    for a, b in zip(last, final, strict=True):
        assert scaled_error(a.cpu(), b.cpu()) < 1e-5


def test_custom_op_registration():
    # schema, fake (meta) implementation and autograd registration are consistent with the real kernels
    q, k, v, i_pre, f_pre, C0, n0, m0 = make(1, 2, 20, 16, 16, seed=11)
    args = [t.requires_grad_(True) for t in (q, k, v, i_pre, f_pre, C0, n0, m0)]
    torch.library.opcheck(mlstm_triton_mod._mlstm_fwd, (*args, 16))
    h, C, n, m, m_steps, den = mlstm_triton_mod._mlstm_fwd(*(t.detach() for t in args), 16)
    torch.library.opcheck(
        mlstm_triton_mod._mlstm_bwd,
        (torch.randn_like(h), None, None, None, *(t.detach() for t in args), h, m_steps, den, 16),
        test_utils=("test_schema", "test_faketensor"),
    )


@pytest.mark.skipif(not INTERPRETED, reason="aot_eager tracing check at interpreter sizes")
def test_torch_compile_traces_through():
    fn = torch.compile(triton_fn(16), backend="aot_eager", fullgraph=True)
    check(fn, reference_fn(), make(1, 2, 20, 16, 16, seed=12), "cpu", tol=1e-5, grad_tol=2e-5)


def test_argument_errors():
    q, k, v, i, f, C0, n0, m0 = make(1, 2, 8, 4, 4)
    with pytest.raises(UsageError, match="k has shape"):
        mlstm_triton(q, k[:, :, :4], v, i, f)
    with pytest.raises(UsageError, match="initial_state n"):
        mlstm_triton(q, k, v, i, f, (C0, n0[..., :2], m0))
    with pytest.raises(UsageError, match="chunk_size"):
        mlstm_triton(q, k, v, i, f, chunk_size=0)
    with pytest.raises(UsageError, match="float32, bfloat16 or float16"):
        mlstm_triton(q.double(), k, v, i, f)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_realistic_size(dtype):
    # Dk = Dv = 128 heads, L = 4096 in 64-step chunks, against the chunked torch path in float64 on the GPU
    inputs = make(2, 4, 4096, 128, 128, dtype=dtype, seed=7)
    tol, grad_tol = (1e-4, 1e-4) if dtype == torch.float32 else (2e-2, 3e-2)

    def chunked(q, k, v, i, f, C0, n0, m0):
        return mlstm_chunked(q, k, v, i, f, (C0, n0, m0), return_final_state=True, chunk_size=64)

    check(triton_fn(64), chunked, inputs, "cuda", tol=tol, grad_tol=grad_tol, ref_device="cuda")
