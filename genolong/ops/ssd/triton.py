"""Triton kernels for ``ssd_scan`` (Mamba2 SSD): chunked forward and backward, float32 states.

Per head h (B/C group g = h // (H // G)), with a_t = dt_t·A_h and, inside a chunk of Q steps, the
chunk-local cumulative log-decay acum_t = a_1 + ... + a_t:

    y_t   = sum_{s<=t} (C_t·B_s) exp(acum_t - acum_s) dt_s x_s  +  exp(acum_t) S_start C_t  +  D_h x_t
    S_end = exp(acum_end) S_start  +  sum_s exp(acum_end - acum_s) dt_s x_s ⊗ B_s

Forward, three kernels:
  1. chunk_state  grid (nc, Bt·H, N/BLOCK_N): each chunk's own end state S_loc (P, N), one tl.dot (P,Q)x(Q,N).
  2. state_pass   grid (Bt·H, P·N/BLOCK_S): the float32 recurrence over chunks S <- exp(acum_end)·S + S_loc,
                  writing the state entering every chunk over S_loc in place; the final state.
  3. chunk_output grid (nc, Bt·H): per chunk, C·Bᵀ (Q,Q) and C·S_startᵀ (Q,P) by tl.dot over N blocks, the
                  segment-sum decay mask, then (CB ∘ mask ∘ dt)·x (Q,Q)x(Q,P).
Backward (states recomputed, never saved): the same two state kernels run again, then in adjoint mode on
(dy, C) to give dS_end of every chunk (the gradient reaching the chunk's end state), and two chunk kernels:
  dx   = dt ∘ [(CB ∘ mask)ᵀ dy + exp(acum_end - acum) ∘ (B dS_endᵀ)] + D dy   (and x·(dx/dt), dD partials)
  dC_t = sum_s (dy_t·x_s) mask dt_s B_s + exp(acum_t) dy_t S_start        (per head, atomically added to G)
  dB_s = sum_t (dy_t·x_s) mask dt_s C_t + exp(acum_end - acum_s) dt_s x_s dS_end
The log-decays get their gradient from a scaling identity: C_t enters only as exp(acum_t)·C_t, B_s only as
exp(-acum_s)·B_s and the end state only as exp(acum_end)·(...), so d acum_t = C_t·dC_t - B_t·dB_t, plus
<dS_end, S_end> at the chunk's last step; a chunk-local reverse cumsum (torch, on (Bt, L, H) tensors) gives
d a_t, hence dt and A. Memory: chunk states (Bt, L/Q, H, P, N) float32 and (Bt, L, H)-sized vectors; nothing
of size Bt·L·H·P·N.

Operands of tl.dot are in the input dtype (bf16/fp16 on the tensor cores; float32 inputs use 3xTF32
products, see FP32_DOT_PRECISION); accumulation is float32. Any chunk_size >= 1 works (positions past it in
the power-of-two tile are masked); powers of two >= 16 waste nothing. On CPU tensors the kernels run only
under TRITON_INTERPRET=1.
Registered as torch custom ops genolong::ssd_scan_fwd / ssd_scan_bwd (fake implementations and autograd),
so torch.compile traces through them as opaque nodes.
"""

import torch
import triton
import triton.language as tl

from genolong.errors import UsageError

__all__ = ["ssd_scan_triton"]

# Tests set this to True: every buffer a kernel must fill is then pre-filled with NaN.
POISON_BUFFERS = False
BLOCK_S = 1024  # state elements per program in the chunk-to-chunk recurrence
MAX_BLOCK_N = 64  # state columns per tl.dot step (N = 128 takes two)
# tl.dot precision for float32 inputs: "tf32x3" (three TF32 products: float32-level accuracy on the tensor
# cores); "ieee" is exact but runs on the FMA units and spills registers at these tiles; "tf32" is fastest
# with ~1e-3 relative error. bf16/fp16 inputs always multiply in their own dtype.
FP32_DOT_PRECISION = "tf32x3"


@triton.jit
def _chunk_decay(dt_ptr, A_ptr, b, h, c, L, H, Q, BLOCK_Q: tl.constexpr):
    """Rows, validity, dt and the chunk-local cumulative log-decay of chunk c of (b, h), all (BLOCK_Q,), and
    the chunk's total log-decay."""
    offs_q = tl.arange(0, BLOCK_Q)
    t = c * Q + offs_q  # (BLOCK_Q,) sequence positions
    valid = (offs_q < Q) & (t < L)
    row = (b * L + t).to(tl.int64)  # (BLOCK_Q,) index into the (Bt·L) rows
    dt = tl.load(dt_ptr + row * H + h, mask=valid, other=0.0).to(tl.float32)  # 0 past the chunk: inert
    acum = tl.cumsum(dt * tl.load(A_ptr + h).to(tl.float32), axis=0)  # (BLOCK_Q,)
    end = tl.sum(tl.where(offs_q == BLOCK_Q - 1, acum, 0.0), axis=0)  # scalar: the chunk's total log-decay
    return row, valid, dt, acum, end


@triton.jit
def _dot(a, b, DOT_PREC: tl.constexpr, UPCAST: tl.constexpr):
    """a @ b accumulated in float32. UPCAST multiplies in float32: set only under the Triton interpreter,
    whose bf16 dot is wrong (triton 3.9); compiled kernels keep bf16/fp16 operands for the tensor cores."""
    if UPCAST:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    return tl.dot(a, b, input_precision=DOT_PREC)


@triton.jit
def _causal_decay(acum, valid, BLOCK_Q: tl.constexpr):
    """(BLOCK_Q, BLOCK_Q) mask[t, s] = exp(acum_t - acum_s) for s <= t (both valid), else 0."""
    offs = tl.arange(0, BLOCK_Q)
    keep = (offs[None, :] <= offs[:, None]) & valid[:, None] & valid[None, :]
    return tl.exp(tl.where(keep, acum[:, None] - acum[None, :], float("-inf")))


@triton.jit
def _ssd_chunk_state_kernel(
    u_ptr,  # (Bt, L, H, P): x, or dy in adjoint mode
    v_ptr,  # (Bt, L, G, N): B, or C in adjoint mode
    dt_ptr,  # (Bt, L, H)
    A_ptr,  # (H,)
    states_ptr,  # (Bt, nc, H, P, N) float32 out
    totals_ptr,  # (Bt, H, nc) float32 out: each chunk's total log-decay
    L, H, G, P, N, Q, nc,
    ADJOINT: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr,
    DOT_PREC: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    """state[p, n] = sum_s coef_s u_s[p] v_s[n]: the chunk's own end state (forward) or, in adjoint mode, the
    gradient its outputs send to the state entering it, sum_t exp(acum_t) dy_t ⊗ C_t."""
    c, bh, pid_n = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    b, h = bh // H, bh % H
    g = h // (H // G)
    row, valid, dt, acum, end = _chunk_decay(dt_ptr, A_ptr, b, h, c, L, H, Q, BLOCK_Q)
    if ADJOINT:
        coef = tl.exp(acum)  # output t reads the entering state decayed by exp(acum_t)
    else:
        coef = dt * tl.exp(end - acum)  # input s reaches the chunk end decayed by exp(acum_end - acum_s)
    offs_p = tl.arange(0, BLOCK_P)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    u = tl.load(
        u_ptr + (row * H + h)[:, None] * P + offs_p[None, :],
        mask=valid[:, None] & (offs_p < P)[None, :],
        other=0.0,
    )  # (BLOCK_Q, BLOCK_P)
    v = tl.load(
        v_ptr + (row * G + g)[:, None] * N + offs_n[None, :],
        mask=valid[:, None] & (offs_n < N)[None, :],
        other=0.0,
    )  # (BLOCK_Q, BLOCK_N)
    uw = (u.to(tl.float32) * coef[:, None]).to(v.dtype)  # (BLOCK_Q, BLOCK_P)
    state = _dot(tl.trans(uw), v, DOT_PREC, UPCAST)  # (BLOCK_P, BLOCK_N) float32
    base = ((b * nc + c) * H + h).to(tl.int64) * P * N
    mask = (offs_p < P)[:, None] & (offs_n < N)[None, :]
    tl.store(states_ptr + base + offs_p[:, None] * N + offs_n[None, :], state, mask=mask)
    if pid_n == 0:
        tl.store(totals_ptr + (b * H + h) * nc + c, end)


@triton.jit
def _ssd_state_pass_kernel(
    states_ptr,  # (Bt, nc, H, P·N) float32: chunk-local states in, entering (or adjoint end) states out
    totals_ptr,  # (Bt, H, nc) float32 chunk log-decays
    init_ptr,  # (Bt, H, P·N): initial state (forward) or gradient of the final state (adjoint)
    final_ptr,  # (Bt, H, P·N) float32 out: final state (forward) or gradient of the initial state (adjoint)
    fwd_states_ptr,  # adjoint only: (Bt, nc, H, P·N) the forward entering states
    fwd_final_ptr,  # adjoint only: (Bt, H, P·N) the forward final state
    enddot_ptr,  # adjoint only: (Bt, H, nc, n_blocks) float32 out, partial <dS_end, S_end> per chunk
    H, PN, nc, n_blocks,
    HAS_INIT: tl.constexpr, ADJOINT: tl.constexpr, BLOCK_S: tl.constexpr,
):  # fmt: skip
    """The sequential recurrence over chunks, one BLOCK_S slice of the flattened (P·N) state per program.

    forward: S_start[c] = S; S <- exp(total_c)·S + S_loc[c]            (c = 0 .. nc-1)
    adjoint: dS_end[c] = dS; dS <- exp(total_c)·dS + dS_loc[c]        (c = nc-1 .. 0)
    """
    bh, blk = tl.program_id(0), tl.program_id(1)
    b, h = bh // H, bh % H
    offs = blk * BLOCK_S + tl.arange(0, BLOCK_S)  # (BLOCK_S,)
    mask = offs < PN
    if HAS_INIT:
        S = tl.load(init_ptr + bh.to(tl.int64) * PN + offs, mask=mask, other=0.0).to(tl.float32)
    else:
        S = tl.zeros((BLOCK_S,), dtype=tl.float32)
    for i in range(nc):
        if ADJOINT:
            c = nc - 1 - i
        else:
            c = i
        ptr = states_ptr + ((b * nc + c) * H + h).to(tl.int64) * PN + offs
        local = tl.load(ptr, mask=mask, other=0.0)  # (BLOCK_S,)
        tl.store(ptr, S, mask=mask)
        if ADJOINT:
            # the state at this chunk's end: the next chunk's entering state, or the final state
            nxt = fwd_states_ptr + ((b * nc + c + 1) * H + h).to(tl.int64) * PN + offs
            fin = fwd_final_ptr + bh.to(tl.int64) * PN + offs
            S_end = tl.load(tl.where(c == nc - 1, fin, nxt), mask=mask, other=0.0)
            tl.store(enddot_ptr + ((b * H + h) * nc + c) * n_blocks + blk, tl.sum(S * S_end, axis=0))
        S = tl.exp(tl.load(totals_ptr + (b * H + h) * nc + c)) * S + local
    tl.store(final_ptr + bh.to(tl.int64) * PN + offs, S, mask=mask)


@triton.jit
def _ssd_chunk_output_kernel(
    x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr,  # (Bt,L,H,P) (Bt,L,H) (H,) (Bt,L,G,N) (Bt,L,G,N) (H,)
    states_ptr,  # (Bt, nc, H, P, N) float32: state entering each chunk
    y_ptr,  # (Bt, L, H, P) out
    L, H, G, P, N, Q, nc,
    HAS_D: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr,
    DOT_PREC: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    c, bh = tl.program_id(0), tl.program_id(1)
    b, h = bh // H, bh % H
    g = h // (H // G)
    row, valid, dt, acum, end = _chunk_decay(dt_ptr, A_ptr, b, h, c, L, H, Q, BLOCK_Q)
    offs_p = tl.arange(0, BLOCK_P)
    mask_x = valid[:, None] & (offs_p < P)[None, :]
    x_offs = (row * H + h)[:, None] * P + offs_p[None, :]  # (BLOCK_Q, BLOCK_P)
    x = tl.load(x_ptr + x_offs, mask=mask_x, other=0.0)  # (BLOCK_Q, BLOCK_P)
    state_base = ((b * nc + c) * H + h).to(tl.int64) * P * N

    cb = tl.zeros((BLOCK_Q, BLOCK_Q), dtype=tl.float32)  # C_t·B_s
    y_in = tl.zeros((BLOCK_Q, BLOCK_P), dtype=tl.float32)  # C_t·S_start[p, :]
    for n0 in range(0, N, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask_bc = valid[:, None] & (offs_n < N)[None, :]
        bc_offs = (row * G + g)[:, None] * N + offs_n[None, :]  # (BLOCK_Q, BLOCK_N)
        Cb = tl.load(C_ptr + bc_offs, mask=mask_bc, other=0.0)  # (BLOCK_Q, BLOCK_N)
        Bb = tl.load(B_ptr + bc_offs, mask=mask_bc, other=0.0)  # (BLOCK_Q, BLOCK_N)
        cb += _dot(Cb, tl.trans(Bb), DOT_PREC, UPCAST)
        S = tl.load(
            states_ptr + state_base + offs_p[:, None] * N + offs_n[None, :],
            mask=(offs_p < P)[:, None] & (offs_n < N)[None, :],
            other=0.0,
        )  # (BLOCK_P, BLOCK_N) float32
        y_in += _dot(Cb, tl.trans(S).to(Cb.dtype), DOT_PREC, UPCAST)

    scores = cb * _causal_decay(acum, valid, BLOCK_Q) * dt[None, :]  # (BLOCK_Q, BLOCK_Q)
    y = _dot(scores.to(x.dtype), x, DOT_PREC, UPCAST)  # (BLOCK_Q, BLOCK_P)
    y += tl.exp(acum)[:, None] * y_in
    if HAS_D:
        y += tl.load(D_ptr + h).to(tl.float32) * x.to(tl.float32)
    tl.store(y_ptr + x_offs, y.to(y_ptr.dtype.element_ty), mask=mask_x)


@triton.jit
def _ssd_bwd_dx_kernel(
    x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, dy_ptr,
    dstates_ptr,  # (Bt, nc, H, P, N) float32: gradient reaching each chunk's end state
    dx_ptr,  # (Bt, L, H, P) out
    ddt_ptr,  # (Bt, L, H) float32 out: x_t·(dL/d(dt_t x_t)), the direct part of d dt
    dD_ptr,  # (Bt, nc, H) float32 out: this chunk's sum of dy·x
    L, H, G, P, N, Q, nc,
    HAS_D: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr,
    DOT_PREC: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    c, bh = tl.program_id(0), tl.program_id(1)
    b, h = bh // H, bh % H
    g = h // (H // G)
    row, valid, dt, acum, end = _chunk_decay(dt_ptr, A_ptr, b, h, c, L, H, Q, BLOCK_Q)
    offs_p = tl.arange(0, BLOCK_P)
    mask_x = valid[:, None] & (offs_p < P)[None, :]
    x_offs = (row * H + h)[:, None] * P + offs_p[None, :]  # (BLOCK_Q, BLOCK_P)
    x = tl.load(x_ptr + x_offs, mask=mask_x, other=0.0)  # (BLOCK_Q, BLOCK_P)
    dy = tl.load(dy_ptr + x_offs, mask=mask_x, other=0.0)  # (BLOCK_Q, BLOCK_P)
    state_base = ((b * nc + c) * H + h).to(tl.int64) * P * N

    cb = tl.zeros((BLOCK_Q, BLOCK_Q), dtype=tl.float32)  # C_t·B_s
    from_end = tl.zeros((BLOCK_Q, BLOCK_P), dtype=tl.float32)  # B_s·dS_end[p, :]
    for n0 in range(0, N, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask_bc = valid[:, None] & (offs_n < N)[None, :]
        bc_offs = (row * G + g)[:, None] * N + offs_n[None, :]  # (BLOCK_Q, BLOCK_N)
        Cb = tl.load(C_ptr + bc_offs, mask=mask_bc, other=0.0)
        Bb = tl.load(B_ptr + bc_offs, mask=mask_bc, other=0.0)
        cb += _dot(Cb, tl.trans(Bb), DOT_PREC, UPCAST)
        dS = tl.load(
            dstates_ptr + state_base + offs_p[:, None] * N + offs_n[None, :],
            mask=(offs_p < P)[:, None] & (offs_n < N)[None, :],
            other=0.0,
        )  # (BLOCK_P, BLOCK_N) float32
        from_end += _dot(Bb, tl.trans(dS).to(Bb.dtype), DOT_PREC, UPCAST)

    scores_t = tl.trans(cb * _causal_decay(acum, valid, BLOCK_Q))  # (BLOCK_Q s, BLOCK_Q t)
    dxdt = _dot(scores_t.to(dy.dtype), dy, DOT_PREC, UPCAST)  # (BLOCK_Q, BLOCK_P): dL/d(dt_s x_s)
    dxdt += tl.exp(end - acum)[:, None] * from_end
    xf = x.to(tl.float32)
    dyf = dy.to(tl.float32)
    dx = dt[:, None] * dxdt
    if HAS_D:
        dx += tl.load(D_ptr + h).to(tl.float32) * dyf
    tl.store(dx_ptr + x_offs, dx.to(dx_ptr.dtype.element_ty), mask=mask_x)
    tl.store(ddt_ptr + row * H + h, tl.sum(xf * dxdt, axis=1), mask=valid)
    tl.store(dD_ptr + (b * nc + c) * H + h, tl.sum(tl.sum(xf * dyf, axis=1), axis=0))


@triton.jit
def _ssd_bwd_dbc_kernel(
    x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, dy_ptr,
    states_ptr,  # (Bt, nc, H, P, N) float32: state entering each chunk
    dstates_ptr,  # (Bt, nc, H, P, N) float32: gradient reaching each chunk's end state
    dB_ptr, dC_ptr,  # (Bt, L, G, N) float32, zero-initialised: heads of a group add into them atomically
    dacum_ptr,  # (Bt, L, H) float32 out: C_t·dC_t - B_t·dB_t for this head
    L, H, G, P, N, Q, nc,
    BLOCK_Q: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr,
    DOT_PREC: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    c, bh = tl.program_id(0), tl.program_id(1)
    b, h = bh // H, bh % H
    g = h // (H // G)
    row, valid, dt, acum, end = _chunk_decay(dt_ptr, A_ptr, b, h, c, L, H, Q, BLOCK_Q)
    offs_p = tl.arange(0, BLOCK_P)
    mask_x = valid[:, None] & (offs_p < P)[None, :]
    x_offs = (row * H + h)[:, None] * P + offs_p[None, :]
    x = tl.load(x_ptr + x_offs, mask=mask_x, other=0.0)  # (BLOCK_Q, BLOCK_P)
    dy = tl.load(dy_ptr + x_offs, mask=mask_x, other=0.0)  # (BLOCK_Q, BLOCK_P)
    state_base = ((b * nc + c) * H + h).to(tl.int64) * P * N

    # w[t, s] = (dy_t·x_s) exp(acum_t - acum_s) dt_s: the weight of B_s in dC_t and of C_t in dB_s
    w = _dot(dy, tl.trans(x), DOT_PREC, UPCAST)  # (BLOCK_Q t, BLOCK_Q s)
    w = w * _causal_decay(acum, valid, BLOCK_Q) * dt[None, :]
    w_in = w.to(x.dtype)
    w_in_t = tl.trans(w).to(x.dtype)
    in_scale = tl.exp(acum)  # (BLOCK_Q,) entering state -> step t
    out_scale = dt * tl.exp(end - acum)  # (BLOCK_Q,) step s -> chunk end
    dacum = tl.zeros((BLOCK_Q,), dtype=tl.float32)
    for n0 in range(0, N, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask_bc = valid[:, None] & (offs_n < N)[None, :]
        bc_offs = (row * G + g)[:, None] * N + offs_n[None, :]  # (BLOCK_Q, BLOCK_N)
        Cb = tl.load(C_ptr + bc_offs, mask=mask_bc, other=0.0)
        Bb = tl.load(B_ptr + bc_offs, mask=mask_bc, other=0.0)
        s_offs = state_base + offs_p[:, None] * N + offs_n[None, :]
        mask_s = (offs_p < P)[:, None] & (offs_n < N)[None, :]
        S = tl.load(states_ptr + s_offs, mask=mask_s, other=0.0)  # (BLOCK_P, BLOCK_N)
        dS = tl.load(dstates_ptr + s_offs, mask=mask_s, other=0.0)  # (BLOCK_P, BLOCK_N)
        dC = _dot(w_in, Bb, DOT_PREC, UPCAST)  # (BLOCK_Q, BLOCK_N)
        dC += in_scale[:, None] * _dot(dy, S.to(dy.dtype), DOT_PREC, UPCAST)
        dB = _dot(w_in_t, Cb, DOT_PREC, UPCAST)  # (BLOCK_Q, BLOCK_N)
        dB += out_scale[:, None] * _dot(x, dS.to(x.dtype), DOT_PREC, UPCAST)
        tl.atomic_add(dC_ptr + bc_offs, dC, mask=mask_bc)
        tl.atomic_add(dB_ptr + bc_offs, dB, mask=mask_bc)
        dacum += tl.sum(Cb.to(tl.float32) * dC - Bb.to(tl.float32) * dB, axis=1)
    tl.store(dacum_ptr + row * H + h, dacum, mask=valid)


def _empty(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised buffer for a kernel to fill (NaN-filled when POISON_BUFFERS is set)."""
    if POISON_BUFFERS:
        return torch.full(shape, float("nan"), device=device, dtype=dtype)
    return torch.empty(shape, device=device, dtype=dtype)


class _Plan:
    """Sizes, tiles and grids of one call: Q-step chunks in BLOCK_Q-row tiles."""

    def __init__(self, x: torch.Tensor, B: torch.Tensor, chunk_size: int):
        self.Bt, self.L, self.H, self.P = x.shape
        self.G, self.N = B.shape[2], B.shape[3]
        self.Q = min(chunk_size, self.L)
        self.nc = triton.cdiv(self.L, self.Q)
        self.block_q = max(16, triton.next_power_of_2(self.Q))
        self.block_p = max(16, triton.next_power_of_2(self.P))
        self.block_n = min(MAX_BLOCK_N, max(16, triton.next_power_of_2(self.N)))
        self.n_sblocks = triton.cdiv(self.P * self.N, BLOCK_S)
        self.dot_prec = FP32_DOT_PRECISION if x.dtype == torch.float32 else "tf32"  # ignored for bf16
        self.upcast = type(_ssd_chunk_output_kernel).__name__ == "InterpretedFunction"

    def dims(self) -> tuple[int, ...]:
        return self.L, self.H, self.G, self.P, self.N, self.Q, self.nc

    def tiles(self) -> dict:
        return {
            "BLOCK_Q": self.block_q,
            "BLOCK_P": self.block_p,
            "BLOCK_N": self.block_n,
            "DOT_PREC": self.dot_prec,
            "UPCAST": self.upcast,
        }


def _chunk_states(plan: _Plan, u, v, dt, A, init, adjoint: bool, fwd_states=None, fwd_final=None):
    """Run chunk_state then state_pass. Returns (states (Bt, nc, H, P, N), final/initial (Bt, H, P, N),
    totals (Bt, H, nc), enddot (Bt, H, nc) or None); see the two kernels."""
    p = plan
    states = _empty((p.Bt, p.nc, p.H, p.P, p.N), u.device)  # (Bt, nc, H, P, N)
    totals = _empty((p.Bt, p.H, p.nc), u.device)  # (Bt, H, nc)
    grid = (p.nc, p.Bt * p.H, triton.cdiv(p.N, p.block_n))
    _ssd_chunk_state_kernel[grid](u, v, dt, A, states, totals, *p.dims(), ADJOINT=adjoint, **p.tiles())
    last = _empty((p.Bt, p.H, p.P, p.N), u.device)  # (Bt, H, P, N)
    enddot = _empty((p.Bt, p.H, p.nc, p.n_sblocks), u.device) if adjoint else totals  # (Bt, H, nc, blocks)
    _ssd_state_pass_kernel[(p.Bt * p.H, p.n_sblocks)](
        states, totals, init if init is not None else states, last,
        fwd_states if adjoint else states, fwd_final if adjoint else last, enddot,
        p.H, p.P * p.N, p.nc, p.n_sblocks,
        HAS_INIT=init is not None, ADJOINT=adjoint, BLOCK_S=BLOCK_S,
    )  # fmt: skip
    return states, last, totals, enddot.sum(-1) if adjoint else None


def _chunk_local_reverse_cumsum(v: torch.Tensor, Q: int) -> torch.Tensor:
    """out[t] = sum of v[s] for s >= t in t's chunk of Q steps; v (Bt, L, H) -> (Bt, L, H)."""
    Bt, L, H = v.shape
    nc = -(-L // Q)
    padded = torch.nn.functional.pad(v, (0, 0, 0, nc * Q - L)).view(Bt, nc, Q, H)  # (Bt, nc, Q, H)
    return padded.flip(2).cumsum(2).flip(2).reshape(Bt, nc * Q, H)[:, :L]


@torch.library.custom_op("genolong::ssd_scan_fwd", mutates_args=())
def _ssd_scan_fwd(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    initial_state: torch.Tensor | None,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y (Bt, L, H, P) in x's dtype, final state (Bt, H, P, N) float32)."""
    plan = _Plan(x, B, chunk_size)
    states, final, _, _ = _chunk_states(plan, x, B, dt, A, initial_state, adjoint=False)
    y = _empty(x.shape, x.device, x.dtype)  # (Bt, L, H, P)
    _ssd_chunk_output_kernel[(plan.nc, plan.Bt * plan.H)](
        x, dt, A, B, C, D if D is not None else A, states, y, *plan.dims(),
        HAS_D=D is not None, **plan.tiles(),
    )  # fmt: skip
    return y, final


@_ssd_scan_fwd.register_fake
def _(x, dt, A, B, C, D, initial_state, chunk_size):
    Bt, _, H, P = x.shape
    return torch.empty_like(x), x.new_empty((Bt, H, P, B.shape[3]), dtype=torch.float32)


@torch.library.custom_op("genolong::ssd_scan_bwd", mutates_args=())
def _ssd_scan_bwd(
    dy: torch.Tensor | None,
    dfinal: torch.Tensor | None,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    initial_state: torch.Tensor | None,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, ddt, dA, dB, dC, dD, dinitial_state); dD and dinitial_state are empty where D / the state is absent."""
    p = _Plan(x, B, chunk_size)
    dy = dy.contiguous() if dy is not None else torch.zeros_like(x)
    dfinal = dfinal.contiguous() if dfinal is not None else None
    states, final, _, _ = _chunk_states(p, x, B, dt, A, initial_state, adjoint=False)
    dstates, dinit, _, enddot = _chunk_states(p, dy, C, dt, A, dfinal, True, states, final)

    dx = _empty(x.shape, x.device, x.dtype)  # (Bt, L, H, P)
    ddt = _empty(dt.shape, x.device)  # (Bt, L, H)
    dD = _empty((p.Bt, p.nc, p.H), x.device)  # (Bt, nc, H)
    _ssd_bwd_dx_kernel[(p.nc, p.Bt * p.H)](
        x, dt, A, B, C, D if D is not None else A, dy, dstates, dx, ddt, dD, *p.dims(),
        HAS_D=D is not None, **p.tiles(),
    )  # fmt: skip
    dB = torch.zeros(B.shape, device=x.device, dtype=torch.float32)  # (Bt, L, G, N)
    dC = torch.zeros(C.shape, device=x.device, dtype=torch.float32)  # (Bt, L, G, N)
    dacum = _empty(dt.shape, x.device)  # (Bt, L, H)
    _ssd_bwd_dbc_kernel[(p.nc, p.Bt * p.H)](
        x, dt, A, B, C, dy, states, dstates, dB, dC, dacum, *p.dims(), **p.tiles()
    )

    # the end state's decay gradient belongs to each chunk's last step
    last = torch.clamp(torch.arange(1, p.nc + 1, device=x.device) * p.Q, max=p.L) - 1  # (nc,)
    dacum[:, last] += enddot.transpose(1, 2)  # (Bt, nc, H)
    da = _chunk_local_reverse_cumsum(dacum, p.Q)  # (Bt, L, H): dL/d(dt_t·A_h)
    Af = A.float()
    ddt = ddt + da * Af  # (Bt, L, H)
    dA = (da * dt.float()).sum((0, 1))  # (H,)
    dD = dD.sum((0, 1)).to(D.dtype) if D is not None else x.new_empty(0)  # (H,)
    dinit = dinit if initial_state is not None else x.new_empty(0)  # (Bt, H, P, N)
    return dx, ddt.to(dt.dtype), dA.to(A.dtype), dB.to(B.dtype), dC.to(C.dtype), dD, dinit


@_ssd_scan_bwd.register_fake
def _(dy, dfinal, x, dt, A, B, C, D, initial_state, chunk_size):
    def like(t):
        return torch.empty_like(t) if t is not None else x.new_empty(0)

    return (torch.empty_like(x), torch.empty_like(dt), torch.empty_like(A), torch.empty_like(B),
            torch.empty_like(C), like(D), like(initial_state))  # fmt: skip


def _setup_context(ctx, inputs, output):
    *tensors, chunk_size = inputs
    ctx.save_for_backward(*tensors)
    ctx.chunk_size = chunk_size
    ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None, not as zeros


def _backward(ctx, dy, dfinal):
    x, dt, A, B, C, D, initial_state = ctx.saved_tensors
    grads = _ssd_scan_bwd(dy, dfinal, x, dt, A, B, C, D, initial_state, ctx.chunk_size)
    dx, ddt, dA, dB, dC, dD, dinit = grads
    return dx, ddt, dA, dB, dC, dD if D is not None else None, dinit if initial_state is not None else None, None


_ssd_scan_fwd.register_autograd(_backward, setup_context=_setup_context)


def _check(x, dt, A, B, C, D, initial_state, chunk_size) -> None:
    """Raise UsageError for shapes, dtypes or devices the kernels cannot take."""
    if x.ndim != 4 or B.ndim != 4:
        raise UsageError(
            f"ssd_scan_triton: x must be (Bt, L, H, P) and B (Bt, L, G, N), got {tuple(x.shape)}"
        )
    Bt, L, H, P = x.shape
    G, N = B.shape[2], B.shape[3]
    expected = {"dt": (Bt, L, H), "A": (H,), "B": (Bt, L, G, N), "C": (Bt, L, G, N), "D": (H,)}
    expected["initial_state"] = (Bt, H, P, N)
    given = {"dt": dt, "A": A, "B": B, "C": C, "D": D, "initial_state": initial_state}
    for name, t in given.items():
        if t is not None and tuple(t.shape) != expected[name]:
            raise UsageError(f"ssd_scan_triton: {name} has shape {tuple(t.shape)}, expected {expected[name]}")
    if L < 1 or G < 1 or H % G != 0:
        raise UsageError(f"ssd_scan_triton: need L >= 1 and H % G == 0, got L={L}, H={H}, G={G}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise UsageError(f"ssd_scan_triton: chunk_size must be a positive integer, got {chunk_size!r}")
    tensors = [t for t in given.values() if t is not None] + [x]
    if any(t.dtype not in (torch.float32, torch.bfloat16, torch.float16) for t in tensors):
        raise UsageError("ssd_scan_triton: tensors must be float32, bfloat16 or float16")
    if len({t.device for t in tensors}) != 1:
        raise UsageError("ssd_scan_triton: all tensors must be on the same device")
    if x.device.type == "cpu" and type(_ssd_chunk_output_kernel).__name__ != "InterpretedFunction":
        raise UsageError(
            "ssd_scan_triton needs CUDA tensors; got tensors on CPU",
            hint="set TRITON_INTERPRET=1 before genolong's Triton kernels are imported to run them on CPU",
        )


def ssd_scan_triton(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
    return_final_state: bool = False,
    chunk_size: int = 64,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Mamba2 SSD scan on Triton kernels; same contract as ``ssd_scan_reference``.

    x (Bt, L, H, P), dt (Bt, L, H) positive, A (H,) negative, B, C (Bt, L, G, N), D (H,) or None,
    initial_state (Bt, H, P, N) or None. Returns y (Bt, L, H, P) in x's dtype [, final state (Bt, H, P, N)
    float32]. Differentiable in every tensor input. B and C are used in x's dtype.
    """
    _check(x, dt, A, B, C, D, initial_state, chunk_size)
    y, final = _ssd_scan_fwd(
        x.contiguous(),
        dt.contiguous(),
        A.contiguous(),
        B.to(x.dtype).contiguous(),
        C.to(x.dtype).contiguous(),
        D.contiguous() if D is not None else None,
        initial_state.float().contiguous() if initial_state is not None else None,
        chunk_size,
    )
    return (y, final) if return_final_state else y
