"""The fast PyTorch paths on a CUDA device against the CPU reference (skipped without CUDA)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genolong.ops import long_conv, mlstm, short_conv, ssd_scan
from tests.ops.helpers import assert_same_outputs_and_grads

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def on(device, fn):
    """fn run with its tensor inputs moved to ``device``."""
    return lambda *a: fn(*(t.to(device) if t is not None else None for t in a))


def inputs(op: str, L: int, dtype: torch.dtype):
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g).to(dtype)  # noqa: E731
    if op in ("long_conv", "short_conv"):
        Lk = L if op == "long_conv" else 4
        return [r(2, 8, L), r(8, Lk) / Lk**0.5, r(8)]
    if op == "ssd_scan":
        dt = F.softplus(torch.randn(2, L, 4, generator=g)).to(dtype)
        return [r(2, L, 4, 8), dt, -torch.rand(4, generator=g), r(2, L, 2, 16), r(2, L, 2, 16), r(4)]
    return [r(2, 2, L, 16), r(2, 2, L, 16), r(2, 2, L, 8), r(2, 2, L), r(2, 2, L) + 2]


OPS = {"long_conv": long_conv, "short_conv": short_conv, "ssd_scan": ssd_scan, "mlstm": mlstm}


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-4), (torch.bfloat16, 3e-2)])
def test_cuda_fast_path_matches_cpu_reference(op, dtype, tol):
    fn = OPS[op]
    assert_same_outputs_and_grads(
        on("cuda", lambda *a: fn(*a, backend="torch")),
        on("cpu", lambda *a: fn(*a, backend="reference")),
        inputs(op, 300, dtype),
        tol=tol,
    )
