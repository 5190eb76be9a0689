"""Helpers for the operator tests: comparing outputs and gradients of two implementations."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def scaled_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| divided by max |b| (or 1 when b is all small): a relative error robust to near-zeros."""
    a, b = a.double(), b.double()
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.isfinite(a).all(), "non-finite values"
    return ((a - b).abs().max() / b.abs().max().clamp(min=1.0)).item() if a.numel() else 0.0


def assert_close(a: torch.Tensor, b: torch.Tensor, tol: float, what: str = "") -> None:
    err = scaled_error(a, b)
    assert err <= tol, f"{what}: scaled error {err:.3g} > {tol:.3g}"


def flat_outputs(out) -> list[torch.Tensor]:
    """The tensors of an op's return value: y, or (y, state) with state a tensor or a tuple of tensors."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for part in out for t in flat_outputs(part)]


def outputs_and_grads(
    fn: Callable, inputs: Sequence[torch.Tensor | None], seed: int = 0
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Run ``fn(*inputs)`` and take the gradient of a fixed random projection of every output w.r.t. every
    input that is a floating tensor. Returns (outputs, grads) in float32 on the CPU."""
    leaves = [t.detach().clone().requires_grad_(True) if t is not None else None for t in inputs]
    outs = flat_outputs(fn(*leaves))
    gen = torch.Generator().manual_seed(seed)
    loss = sum((o.float() * torch.randn(o.shape, generator=gen).to(o.device)).sum() for o in outs)
    wrt = [t for t in leaves if t is not None]
    grads = torch.autograd.grad(loss, wrt)
    return [o.detach().float().cpu() for o in outs], [g.float().cpu() for g in grads]


def assert_same_outputs_and_grads(
    fast: Callable,
    ref: Callable,
    inputs: Sequence[torch.Tensor | None],
    tol: float,
    grad_tol: float | None = None,
    names: Sequence[str] | None = None,
) -> None:
    """Outputs and gradients (w.r.t. every given input) of ``fast`` match those of ``ref``."""
    out_f, grad_f = outputs_and_grads(fast, inputs)
    out_r, grad_r = outputs_and_grads(ref, inputs)
    for i, (a, b) in enumerate(zip(out_f, out_r, strict=True)):
        assert_close(a, b, tol, f"output {i}")
    given = [n for n, t in zip(names or [str(i) for i in range(len(inputs))], inputs, strict=True) if t is not None]
    for name, a, b in zip(given, grad_f, grad_r, strict=True):
        assert_close(a, b, grad_tol if grad_tol is not None else tol, f"grad {name}")


def triton_run_modes(kernel) -> tuple[bool, bool, list]:
    """(interpreted, compiled on CUDA, pytest params of the devices) for a Triton kernel of this process.

    Without CUDA the root conftest sets TRITON_INTERPRET=1 before triton loads, so kernels run on CPU tensors;
    with CUDA they run compiled. A module whose kernels can run nowhere is skipped.
    """
    import pytest

    interpreted = type(kernel).__name__ == "InterpretedFunction"
    cuda = torch.cuda.is_available() and not interpreted
    devices = [pytest.param("cpu", id="interpreter")] if interpreted else []
    devices += [pytest.param("cuda", id="cuda")] if cuda else []
    if not devices:
        pytest.skip("no CUDA and TRITON_INTERPRET is not 1: the kernels cannot run here", allow_module_level=True)
    return interpreted, cuda, devices


def outputs_and_grads_on(fn, inputs, device, double=False, seed=0):
    """Outputs of fn(*inputs) on ``device`` and the gradients of a fixed random projection of them."""
    leaves = [
        t.detach().to(device, torch.float64 if double else t.dtype).requires_grad_(True) if t is not None else None
        for t in inputs
    ]
    outs = flat_outputs(fn(*leaves))
    gen = torch.Generator().manual_seed(seed)
    loss = sum((o.double() * torch.randn(o.shape, generator=gen, dtype=torch.float64).to(device)).sum() for o in outs)
    grads = torch.autograd.grad(loss, [t for t in leaves if t is not None])
    return [o.detach().cpu() for o in outs], [g.cpu() for g in grads]
