"""short_conv Triton kernels: outputs and gradients against the reference, the custom op, torch.compile.

On a machine without CUDA the kernels run on CPU tensors under the Triton interpreter (TRITON_INTERPRET=1,
which tests/conftest.py sets before triton loads) at tiny sizes; with CUDA they run compiled on the GPU, and the
``gpu``-marked tests add realistic sizes. The whole module is skipped when triton is not installed.
"""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("triton")  # without CUDA, tests/conftest.py has set TRITON_INTERPRET=1 before this import

import torch.nn.functional as F  # noqa: E402

from genolong.errors import UsageError  # noqa: E402
from genolong.ops.short_conv import triton as sc_triton  # noqa: E402
from genolong.ops.short_conv.reference import short_conv_reference  # noqa: E402
from genolong.ops.short_conv.triton import short_conv_triton  # noqa: E402
from tests.ops.helpers import outputs_and_grads_on, scaled_error, triton_run_modes  # noqa: E402

INTERPRETED, CUDA, DEVICES = triton_run_modes(sc_triton._short_conv_fwd_kernel)


@pytest.fixture(autouse=True)
def poison(monkeypatch):
    """Every buffer the kernels must fill starts as NaN, so unwritten memory shows up in the results."""
    monkeypatch.setattr(sc_triton, "POISON_BUFFERS", True)


def reference(x, w, bias=None, activation=None):
    y = short_conv_reference(x, w, bias)
    return F.silu(y) if activation == "silu" else y


def check(fast, ref, inputs, device, tol, grad_tol=None):
    """fast on ``device`` in the inputs' dtype against ref in float64 on CPU: outputs and every gradient."""
    out_f, grad_f = outputs_and_grads_on(fast, inputs, device)
    out_r, grad_r = outputs_and_grads_on(ref, inputs, "cpu", double=True)
    for i, (a, b) in enumerate(zip(out_f, out_r, strict=True)):
        assert a.dtype == inputs[0].dtype, f"output {i} has dtype {a.dtype}"
        err = scaled_error(a, b)
        assert err <= tol, f"output {i}: scaled error {err:.3g} > {tol:.3g}"
    for i, (a, b) in enumerate(zip(grad_f, grad_r, strict=True)):
        err = scaled_error(a, b)
        assert err <= (grad_tol or tol), f"grad {i}: scaled error {err:.3g} > {grad_tol or tol:.3g}"


def make(B, D, L, W, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, D, L, generator=g).to(dtype)  # (B, D, L)
    w = torch.randn(D, W, generator=g).to(dtype)  # (D, W)
    bias = torch.randn(D, generator=g).to(dtype)  # (D,)
    return x, w, bias


def test_interpreter_is_effective():
    if not torch.cuda.is_available():
        assert os.environ["TRITON_INTERPRET"] == "1" and INTERPRETED


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", [None, "silu"])
@pytest.mark.parametrize(("W", "L"), [(1, 7), (3, 1), (4, 63), (8, 7)])
def test_matches_reference_fp32(device, W, L, activation):
    x, w, bias = make(2, 5, L, W, seed=W * 100 + L)
    check(
        lambda x, w, b: short_conv_triton(x, w, b, activation),
        lambda x, w, b: reference(x, w, b, activation),
        [x, w, bias],
        device,
        tol=1e-5,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", [None, "silu"])
def test_without_bias(device, activation):
    x, w, _ = make(1, 3, 20, 4, seed=3)
    check(
        lambda x, w: short_conv_triton(x, w, None, activation),
        lambda x, w: reference(x, w, None, activation),
        [x, w],
        device,
        tol=1e-5,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", [None, "silu"])
def test_many_tiles(device, activation, monkeypatch):
    # 16-position tiles: L = 63 spans 4 tiles, D = 5 spans 2 channel tiles (halos, partial sums cross tiles)
    monkeypatch.setattr(sc_triton, "MAX_BLOCK_L", 16)
    x, w, bias = make(1, 5, 63, 4, seed=11)
    check(
        lambda x, w, b: short_conv_triton(x, w, b, activation),
        lambda x, w, b: reference(x, w, b, activation),
        [x, w, bias],
        device,
        tol=1e-5,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", [None, "silu"])
def test_bf16_inputs(device, activation):
    x, w, bias = make(2, 4, 63, 4, dtype=torch.bfloat16, seed=5)
    check(
        lambda x, w, b: short_conv_triton(x, w, b, activation),
        lambda x, w, b: reference(x, w, b, activation),
        [x, w, bias],
        device,
        tol=1e-2,
        grad_tol=2e-2,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_non_contiguous_input(device):
    x, w, bias = make(1, 16, 4, 3, seed=2)
    x = x.transpose(1, 2).contiguous().transpose(1, 2)[:, ::2]  # (1, 8, 4) strided view
    got = short_conv_triton(x.to(device), w[::2].to(device), bias[::2].to(device))
    assert scaled_error(got.cpu(), reference(x, w[::2], bias[::2])) < 1e-5


@pytest.mark.skipif(not INTERPRETED, reason="opcheck at interpreter sizes")
def test_custom_op_registration():
    # schema, fake (meta) implementation and autograd registration are consistent with the real kernels
    x, w, bias = make(1, 3, 9, 3, seed=1)
    args = (x.requires_grad_(True), w.requires_grad_(True), bias.requires_grad_(True), "silu")
    torch.library.opcheck(sc_triton._short_conv_fwd, args)
    # the backward op has no autograd of its own (no double backward): check its schema and fake impl only
    torch.library.opcheck(
        sc_triton._short_conv_bwd,
        (torch.randn(1, 3, 9), x.detach(), w.detach(), None, "silu"),
        test_utils=("test_schema", "test_faketensor"),
    )


@pytest.mark.skipif(not INTERPRETED, reason="aot_eager tracing check at interpreter sizes")
def test_torch_compile_traces_through():
    x, w, bias = make(1, 3, 12, 4, seed=4)
    fn = torch.compile(lambda x, w, b: short_conv_triton(x, w, b, "silu"), backend="aot_eager", fullgraph=True)
    check(fn, lambda x, w, b: reference(x, w, b, "silu"), [x, w, bias], "cpu", tol=1e-5)


def test_argument_errors():
    x, w, bias = make(1, 3, 10, 4)
    with pytest.raises(UsageError, match="activation"):
        short_conv_triton(x, w, bias, activation="gelu")
    with pytest.raises(UsageError, match="W <= 8"):
        short_conv_triton(x, torch.randn(3, 9))
    with pytest.raises(UsageError, match="bias"):
        short_conv_triton(x, w, torch.randn(2))
    with pytest.raises(UsageError, match="float32, bfloat16 or float16"):
        short_conv_triton(x.double(), w.double())


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("activation", [None, "silu"])
def test_gpu_realistic_size(activation):
    # B=2, D=1024, L=2^15 in bf16 against the float64 reference on the GPU
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(2, 1024, 2**15, device="cuda", generator=g).bfloat16()
    w = torch.randn(1024, 4, device="cuda", generator=g).bfloat16()
    bias = torch.randn(1024, device="cuda", generator=g).bfloat16()
    check(
        lambda x, w, b: short_conv_triton(x, w, b, activation),
        lambda x, w, b: reference(x.cuda(), w.cuda(), b.cuda(), activation),
        [x, w, bias],
        "cuda",
        tol=1e-2,
        grad_tol=2e-2,
    )
