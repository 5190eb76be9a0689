"""``ssd_scan``: the Mamba2 selective state-space scan (SSD), with backend dispatch."""

from __future__ import annotations

import torch

from genolong.errors import UsageError
from genolong.ops._backend import Backend, select_backend
from genolong.ops._validate import expect_chunk_size, expect_ndim, expect_shape
from genolong.ops.ssd.chunked import ssd_scan_chunked
from genolong.ops.ssd.reference import ssd_scan_reference

__all__ = ["ssd_scan", "ssd_scan_chunked", "ssd_scan_reference"]


def ssd_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
    return_final_state: bool = False,
    *,
    chunk_size: int = 64,
    backend: Backend = "auto",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Mamba2 SSD: ``S_t = exp(dt_t·A_h)·S_{t-1} + dt_t·x_t ⊗ B_t``, ``y_t = S_t·C_t + D_h·x_t``.

    x (Bt, L, H, P); dt (Bt, L, H), already positive; A (H,), negative; B, C (Bt, L, G, N) with H % G == 0,
    head h reading group h // (H // G); D (H,) or None; initial_state (Bt, H, P, N) or None (zeros).
    Returns y (Bt, L, H, P) in x's dtype, and with ``return_final_state`` also the final state
    (Bt, H, P, N) in float32 (float64 for float64 inputs). Accumulates in float32.
    ``chunk_size``: chunk length of the torch path.
    backend: "auto" | "torch" (chunked) | "triton" | "reference" (step by step); see genolong.ops._backend.
    """
    op = "ssd_scan"
    expect_ndim(op, "x", x, 4, "(Bt, L, H, P)")
    expect_ndim(op, "B", B, 4, "(Bt, L, G, N)")
    Bt, L, H, P = x.shape
    G, N = B.shape[2], B.shape[3]
    if L < 1:
        raise UsageError(f"{op}: x has an empty sequence axis, shape {tuple(x.shape)}")
    if G < 1 or H % G != 0:
        raise UsageError(
            f"{op}: the number of heads H={H} must be a multiple of the number of B/C groups G={G}"
        )
    expect_shape(op, "dt", dt, (Bt, L, H))
    expect_shape(op, "A", A, (H,))
    expect_shape(op, "B", B, (Bt, L, G, N))
    expect_shape(op, "C", C, (Bt, L, G, N))
    expect_shape(op, "D", D, (H,))
    expect_shape(op, "initial_state", initial_state, (Bt, H, P, N))
    expect_chunk_size(op, chunk_size)
    chosen = select_backend(op, backend, x, dt, A, B, C, D, initial_state)
    if chosen == "triton":  # imported here: Triton loads only when asked for
        from genolong.ops.ssd.triton import ssd_scan_triton

        return ssd_scan_triton(x, dt, A, B, C, D, initial_state, return_final_state, chunk_size=chunk_size)
    if chosen == "reference":
        return ssd_scan_reference(x, dt, A, B, C, D, initial_state, return_final_state)
    return ssd_scan_chunked(x, dt, A, B, C, D, initial_state, return_final_state, chunk_size=chunk_size)
