"""Which implementation of an operator runs: the backend decision shared by every public op.

``backend`` is one of:

- ``"auto"``: the Triton kernel when Triton is importable, every tensor is on CUDA and a kernel exists for the
  op; otherwise the fast PyTorch path ("torch").
- ``"torch"``: the fast PyTorch path (FFT / chunked / conv1d); runs on any device.
- ``"triton"``: the Triton kernel. On CPU tensors only under the Triton interpreter (``TRITON_INTERPRET=1``).
  When it cannot run, a :class:`~genolong.errors.UsageError` says why; an explicit choice never falls back.
- ``"reference"``: the step-by-step / direct-sum reference, the spec every other path is tested against.
  Slow (a Python loop over the sequence); meant for tests and for reading.

Triton is imported lazily, never at ``import genolong``.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from typing import Literal

import torch

from genolong.errors import UsageError

Backend = Literal["auto", "torch", "triton", "reference"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "triton", "reference")

# Kernels that "auto" may choose: those whose parity tests have passed on a real GPU, not only under the
# interpreter. Empty until a GPU run validates them; until then Triton runs only when asked for explicitly.
GPU_VALIDATED_KERNELS: frozenset[str] = frozenset()
TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@lru_cache(maxsize=1)
def triton_importable() -> bool:
    """True when the ``triton`` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("triton") is not None


def triton_interpreter_enabled() -> bool:
    """True when ``TRITON_INTERPRET=1``: Triton kernels then run on CPU tensors, slowly, for tests."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def select_backend(op: str, backend: str, *tensors: torch.Tensor | None) -> str:
    """Resolve ``backend`` for ``op`` given its input tensors; returns "torch", "triton" or "reference".

    Raises UsageError for an unknown name, or for an explicit "triton" that cannot run here.
    """
    if backend not in BACKENDS:
        raise UsageError(
            f"{op}: unknown backend {backend!r}",
            hint=f"choose one of {', '.join(repr(b) for b in BACKENDS)}",
        )
    on_cuda = all(t.is_cuda for t in tensors if t is not None)
    if backend == "auto":
        dtypes_ok = all(t.dtype in TRITON_DTYPES for t in tensors if t is not None and t.is_floating_point())
        use = op in GPU_VALIDATED_KERNELS and on_cuda and dtypes_ok and triton_importable()
        return "triton" if use else "torch"
    if backend != "triton":
        return backend
    if not triton_importable():
        raise UsageError(f"{op}(backend='triton'): triton is not installed", hint="pip install triton")
    if not on_cuda and not triton_interpreter_enabled():
        raise UsageError(
            f"{op}(backend='triton') needs CUDA tensors; got tensors on CPU",
            hint="move the tensors to a GPU, set TRITON_INTERPRET=1 to run the kernel on CPU, "
            "or use backend='torch'",
        )
    return "triton"
