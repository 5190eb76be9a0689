"""``mlstm``: the stabilized matrix-LSTM recurrence of xLSTM, with backend dispatch."""

from __future__ import annotations

import torch

from genolong.errors import UsageError
from genolong.ops._backend import Backend, select_backend
from genolong.ops._validate import expect_chunk_size, expect_ndim, expect_shape
from genolong.ops.mlstm.chunked import mlstm_chunked
from genolong.ops.mlstm.reference import MLSTMState, mlstm_reference

__all__ = ["MLSTMState", "mlstm", "mlstm_chunked", "mlstm_reference"]


def mlstm(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    i_pre: torch.Tensor,
    f_pre: torch.Tensor,
    initial_state: MLSTMState | None = None,
    return_final_state: bool = False,
    *,
    chunk_size: int = 64,
    backend: Backend = "auto",
) -> torch.Tensor | tuple[torch.Tensor, MLSTMState]:
    """Stabilized mLSTM, the recurrence of ``mlstm_reference``: ``h_t = C_t q_t / max(|n_tᵀq_t|, exp(-m_t))``.

    q, k (B, H, L, Dk), k scaled by Dk^-1/2 inside; v (B, H, L, Dv); i_pre, f_pre (B, H, L) gate pre-activations;
    initial_state (C, n, m) with shapes (B, H, Dv, Dk), (B, H, Dk), (B, H), or None for (0, 0, 0).
    Returns h (B, H, L, Dv) in q's dtype, and with ``return_final_state`` also the final (C, n, m) in float32
    (float64 for float64 inputs). Accumulates in float32. ``chunk_size``: chunk length of the torch path.
    backend: "auto" | "torch" (chunkwise) | "triton" | "reference" (step by step); see genolong.ops._backend.
    """
    op = "mlstm"
    expect_ndim(op, "q", q, 4, "(B, H, L, Dk)")
    expect_ndim(op, "v", v, 4, "(B, H, L, Dv)")
    Bsz, H, L, Dk = q.shape
    Dv = v.shape[-1]
    if L < 1:
        raise UsageError(f"{op}: q has an empty sequence axis, shape {tuple(q.shape)}")
    expect_shape(op, "k", k, (Bsz, H, L, Dk))
    expect_shape(op, "v", v, (Bsz, H, L, Dv))
    expect_shape(op, "i_pre", i_pre, (Bsz, H, L))
    expect_shape(op, "f_pre", f_pre, (Bsz, H, L))
    if initial_state is not None:
        if len(initial_state) != 3:
            raise UsageError(f"{op}: initial_state must be a tuple (C, n, m), got {len(initial_state)} items")
        for name, s, shape in zip(
            "Cnm", initial_state, [(Bsz, H, Dv, Dk), (Bsz, H, Dk), (Bsz, H)], strict=True
        ):
            expect_shape(op, f"initial_state {name}", s, shape)
    expect_chunk_size(op, chunk_size)
    state = tuple(initial_state) if initial_state is not None else ()
    chosen = select_backend(op, backend, q, k, v, i_pre, f_pre, *state)
    if chosen == "triton":  # imported here: Triton loads only when asked for
        from genolong.ops.mlstm.triton import mlstm_triton

        return mlstm_triton(q, k, v, i_pre, f_pre, initial_state, return_final_state, chunk_size=chunk_size)
    if chosen == "reference":
        return mlstm_reference(q, k, v, i_pre, f_pre, initial_state, return_final_state)
    return mlstm_chunked(q, k, v, i_pre, f_pre, initial_state, return_final_state, chunk_size=chunk_size)
