"""Triton kernels for ``mlstm``: the stabilized chunkwise mLSTM, forward and backward, float32 states.

Inside a chunk of Q steps (b_t = running sum of lf = logsigmoid(f_pre) from the chunk start, i_t = i_pre_t,
k scaled by Dk^-1/2, (C0, n0, m0) the state entering the chunk):

    log D[t, s] = b_t - b_s + i_s  (s <= t)          m_t = max(b_t + m0, max_s log D[t, s])
    num_t = sum_s exp(log D[t,s] - m_t)(q_t·k_s) v_s + exp(b_t + m0 - m_t) C0 q_t
    den_t = sum_s exp(log D[t,s] - m_t)(q_t·k_s)     + exp(b_t + m0 - m_t) n0·q_t
    h_t   = num_t / max(|den_t|, exp(-m_t))

m_t is exactly the recurrence's stabilizer, and between chunks (C, n, m) advance by the stabilized recurrence
over chunk summaries (m_loc = max_s (b_end - b_s + i_s)), so states and outputs match the step-by-step
reference; every exponent taken is <= 0.

Forward kernels: chunk_state (nc, B·H, Dv/BLOCK_DV) gives each chunk's own C_loc = (v ∘ w)ᵀ k (one tl.dot)
and n_loc; state_pass (B·H, state/BLOCK_S) runs the float32 recurrence over chunks, writing the state entering
every chunk in place; chunk_output (nc, B·H, Dv/BLOCK_DV) builds q kᵀ (Q, Q), the decay matrix and the output.
It also saves m_t and den_t (B, H, L) for the backward.

Backward (states recomputed): the output is independent of the stabilizers (h = C~q / max(|ñ·q|, 1) in
unstabilized terms), so the gradient is that of the stabilized computation with every m held fixed. With
dn_t = dh_t / max(|den_t|, exp(-m_t)) and dd_t = -(dh_t·h_t) sign(den_t) / |den_t| (0 where exp(-m_t) wins):
  the adjoint state dC_end of each chunk (reverse recurrence, same decays as forward),
  dq_t = sum_s D[t,s] (dn_t·v_s + dd_t) k_s + g_t (dn_t C0 + dd_t n0)
  dk_s = sum_t D[t,s] (dn_t·v_s + dd_t) q_t + w_s (dC_endᵀ v_s + dn_end)
  dv_s = sum_t D[t,s] (q_t·k_s) dn_t      + w_s dC_end k_s
and the gates by scaling identities: k_s enters only as exp(i_s - b_s)·k_s, q_t only as exp(b_t)·q_t and the
chunk's end state only as exp(b_end)·(...), so d i_s = k_s·dk_s and d b_t = q_t·dq_t - k_t·dk_t (+ <dC_end,
C_end> + dn_end·n_end at the chunk's last step); a chunk-local reverse cumsum gives d lf. The returned final m
is a max over the sequence; its gradient (and the part of C, n's that goes through it) follows the argmax
(torch glue on (B, H, L) tensors). Memory: chunk states (B, H, L/Q, Dv, Dk) float32; nothing of size L·Dv·Dk.

tl.dot operands are in the input dtype (float32 inputs: 3xTF32 products, see FP32_DOT_PRECISION);
accumulation is float32. On CPU tensors the kernels run only under TRITON_INTERPRET=1.
Registered as torch custom ops genolong::mlstm_fwd / mlstm_bwd (fake implementations and autograd), so torch.compile
traces through them as opaque nodes.
"""

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor

from genolong.errors import UsageError

__all__ = ["mlstm_triton"]

# Tests set this to True: every buffer a kernel must fill is then pre-filled with NaN.
POISON_BUFFERS = False
BLOCK_S = 1024  # state elements per program in the chunk-to-chunk recurrence
MAX_BLOCK_DV = 64  # value columns per program / per tl.dot step (Dv = 128 takes two)
# tl.dot precision for float32 inputs: "tf32x3" (three TF32 products: float32-level accuracy on the tensor
# cores); "ieee" is exact but runs on the FMA units and spills registers at these tiles; "tf32" is fastest
# with ~1e-3 relative error. bf16/fp16 inputs always multiply in their own dtype.
FP32_DOT_PRECISION = "tf32x3"
LOG_FLOOR = tl.constexpr(-60.0)  # as genolong.ops.mlstm.reference.normalize: exp(-m) is taken at max(m, -60)


@triton.jit
def _dot(a, b, DOT_PREC: tl.constexpr, UPCAST: tl.constexpr):
    """a @ b accumulated in float32. UPCAST multiplies in float32: set only under the Triton interpreter,
    whose bf16 dot is wrong (triton 3.9); compiled kernels keep bf16/fp16 operands for the tensor cores."""
    if UPCAST:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    return tl.dot(a, b, input_precision=DOT_PREC)


@triton.jit
def _gates(i_ptr, f_ptr, bh, c, L, Q, BLOCK_Q: tl.constexpr):
    """Rows, validity, input gates (-inf when invalid) and the chunk-local running sum b of logsigmoid(f_pre)
    for chunk c of head bh, all (BLOCK_Q,), and the chunk's total b_end."""
    offs = tl.arange(0, BLOCK_Q)
    t = c * Q + offs  # (BLOCK_Q,) positions
    valid = (offs < Q) & (t < L)
    row = bh.to(tl.int64) * L + t  # (BLOCK_Q,) rows of the (B·H·L) layout
    ig = tl.load(i_ptr + row, mask=valid, other=float("-inf")).to(tl.float32)
    fp = tl.load(f_ptr + row, mask=valid, other=0.0).to(tl.float32)
    # logsigmoid(f) = min(f, 0) - log1p(exp(-|f|)); log1p(x) = x·log(u)/(u - 1), u = 1 + x, is exact at u = 1
    x = tl.exp(-tl.abs(fp))
    u = 1.0 + x
    log1p = tl.where(u == 1.0, x, x * tl.log(u) / (u - 1.0))
    lf = tl.where(valid, tl.minimum(fp, 0.0) - log1p, 0.0)
    b = tl.cumsum(lf, axis=0)  # (BLOCK_Q,)
    b_end = tl.sum(tl.where(offs == BLOCK_Q - 1, b, 0.0), axis=0)
    return row, valid, ig, b, b_end


@triton.jit
def _log_decay(b, ig, valid, BLOCK_Q: tl.constexpr):
    """(BLOCK_Q, BLOCK_Q) log D[t, s] = b_t - b_s + i_s for s <= t (both valid), -inf elsewhere."""
    offs = tl.arange(0, BLOCK_Q)
    keep = (offs[None, :] <= offs[:, None]) & valid[:, None] & valid[None, :]
    return tl.where(keep, b[:, None] - b[None, :] + ig[None, :], float("-inf"))


@triton.jit
def _chunk_end_m(mstart_ptr, mfinal_ptr, bh, c, nc):
    """The stabilizer at the end of chunk c: the next chunk's entering m, or the final m."""
    m_next = tl.load(mstart_ptr + bh * nc + tl.minimum(c + 1, nc - 1))
    return tl.where(c + 1 < nc, m_next, tl.load(mfinal_ptr + bh))


@triton.jit
def _mlstm_chunk_state_kernel(
    u_ptr,  # (B·H, L, Dv): v, or dh in adjoint mode
    r_ptr,  # (B·H, L, Dk): k, or q in adjoint mode
    i_ptr, f_ptr,  # (B·H, L) gate pre-activations
    m_ptr, inv_ptr, dd_ptr,  # adjoint only, (B·H, L) float32: m_t, 1/normaliser, d den_t
    mstart_ptr,  # adjoint only, (B·H, nc) float32: m entering each chunk
    states_ptr,  # (B·H, nc, Dv, Dk) float32 out
    nstates_ptr,  # (B·H, nc, Dk) float32 out
    mloc_ptr, bend_ptr,  # forward only, (B·H, nc) float32 out: chunk stabilizer m_loc and total b_end
    L, Dk, Dv, Q, nc, scale,
    ADJOINT: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_DK: tl.constexpr, BLOCK_DV: tl.constexpr,
    DOT_PREC: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    """Forward: C_loc = sum_s w_s v_s k̂_sᵀ, n_loc = sum_s w_s k̂_s, w_s = exp(b_end - b_s + i_s - m_loc).
    Adjoint: the gradient the chunk's outputs send to its entering state, dC = sum_t g_t dn_t q_tᵀ and
    dn = sum_t g_t dd_t q_t with g_t = exp(b_t + m0 - m_t)."""
    c, bh, pid_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    row, valid, ig, b, b_end = _gates(i_ptr, f_ptr, bh, c, L, Q, BLOCK_Q)
    if ADJOINT:
        m = tl.load(m_ptr + row, mask=valid, other=0.0)
        m0 = tl.load(mstart_ptr + bh * nc + c)
        g = tl.exp(tl.where(valid, b + m0 - m, float("-inf")))  # (BLOCK_Q,)
        coef_u = g * tl.load(inv_ptr + row, mask=valid, other=0.0)
        coef_n = g * tl.load(dd_ptr + row, mask=valid, other=0.0)
    else:
        log_w = b_end - b + ig  # (BLOCK_Q,) -inf where invalid
        m_loc = tl.max(log_w, axis=0)
        coef_u = tl.exp(log_w - m_loc) * scale
        coef_n = coef_u
    offs_k = tl.arange(0, BLOCK_DK)
    offs_v = pid_v * BLOCK_DV + tl.arange(0, BLOCK_DV)
    u = tl.load(
        u_ptr + row[:, None] * Dv + offs_v[None, :], mask=valid[:, None] & (offs_v < Dv)[None, :], other=0.0
    )  # (BLOCK_Q, BLOCK_DV)
    r = tl.load(
        r_ptr + row[:, None] * Dk + offs_k[None, :], mask=valid[:, None] & (offs_k < Dk)[None, :], other=0.0
    )  # (BLOCK_Q, BLOCK_DK)
    uw = (u.to(tl.float32) * coef_u[:, None]).to(r.dtype)
    state = _dot(tl.trans(uw), r, DOT_PREC, UPCAST)  # (BLOCK_DV, BLOCK_DK)
    base = (bh * nc + c).to(tl.int64)
    mask = (offs_v < Dv)[:, None] & (offs_k < Dk)[None, :]
    tl.store(states_ptr + base * Dv * Dk + offs_v[:, None] * Dk + offs_k[None, :], state, mask=mask)
    if pid_v == 0:
        nvec = tl.sum(r.to(tl.float32) * coef_n[:, None], axis=0)  # (BLOCK_DK,)
        tl.store(nstates_ptr + base * Dk + offs_k, nvec, mask=offs_k < Dk)
        if not ADJOINT:
            tl.store(mloc_ptr + bh * nc + c, m_loc)
            tl.store(bend_ptr + bh * nc + c, b_end)


@triton.jit
def _mlstm_state_pass_kernel(
    states_ptr,  # (B·H, nc, S) float32: chunk-local states in, entering states / end adjoints out
    mloc_ptr, bend_ptr,  # (B·H, nc) float32
    mstart_ptr,  # (B·H, nc) float32: out in forward when STORE_M, in for the adjoint
    init_ptr,  # (B·H, S): initial state (forward) or gradient of the final state (adjoint)
    minit_ptr,  # (B·H,): initial m (forward with HAS_INIT)
    final_ptr,  # (B·H, S) float32 out: final state (forward) or gradient of the initial state (adjoint)
    mfinal_ptr,  # (B·H,) float32: out in forward when STORE_M, in for the adjoint
    fwd_states_ptr, fwd_final_ptr,  # adjoint only: forward entering states (B·H, nc, S), final (B·H, S)
    enddot_ptr,  # adjoint only, (B·H, nc, n_blocks) float32 out: partial <dS_end, S_end>
    S, nc, n_blocks,
    HAS_INIT: tl.constexpr, ADJOINT: tl.constexpr, STORE_M: tl.constexpr, BLOCK_S: tl.constexpr,
):  # fmt: skip
    """forward: S_start[c] = S; m' = max(b_end + m, m_loc); S <- exp(b_end + m - m')·S + exp(m_loc - m')·S_loc
    adjoint: dS_end[c] = dS; dS <- exp(b_end + m_start - m_end)·dS + dS_loc[c], c from the last chunk down."""
    bh, blk = tl.program_id(0), tl.program_id(1)
    offs = blk * BLOCK_S + tl.arange(0, BLOCK_S)  # (BLOCK_S,)
    mask = offs < S
    if HAS_INIT:
        state = tl.load(init_ptr + bh.to(tl.int64) * S + offs, mask=mask, other=0.0).to(tl.float32)
    else:
        state = tl.zeros((BLOCK_S,), dtype=tl.float32)
    if ADJOINT:
        for i in range(nc):
            c = nc - 1 - i
            ptr = states_ptr + (bh * nc + c).to(tl.int64) * S + offs
            local = tl.load(ptr, mask=mask, other=0.0)
            tl.store(ptr, state, mask=mask)
            nxt = fwd_states_ptr + (bh * nc + tl.minimum(c + 1, nc - 1)).to(tl.int64) * S + offs
            fin = fwd_final_ptr + bh.to(tl.int64) * S + offs
            S_end = tl.load(tl.where(c == nc - 1, fin, nxt), mask=mask, other=0.0)
            tl.store(enddot_ptr + (bh * nc + c) * n_blocks + blk, tl.sum(state * S_end, axis=0))
            m_start = tl.load(mstart_ptr + bh * nc + c)
            m_end = _chunk_end_m(mstart_ptr, mfinal_ptr, bh, c, nc)
            state = tl.exp(tl.load(bend_ptr + bh * nc + c) + m_start - m_end) * state + local
    else:
        if HAS_INIT:
            m = tl.load(minit_ptr + bh).to(tl.float32)
        else:
            m = 0.0
        for c in range(nc):
            ptr = states_ptr + (bh * nc + c).to(tl.int64) * S + offs
            local = tl.load(ptr, mask=mask, other=0.0)
            tl.store(ptr, state, mask=mask)
            if STORE_M:
                if blk == 0:
                    tl.store(mstart_ptr + bh * nc + c, m)
            b_end = tl.load(bend_ptr + bh * nc + c)
            m_loc = tl.load(mloc_ptr + bh * nc + c)
            m_new = tl.maximum(b_end + m, m_loc)
            state = tl.exp(b_end + m - m_new) * state + tl.exp(m_loc - m_new) * local
            m = m_new
        if STORE_M:
            if blk == 0:
                tl.store(mfinal_ptr + bh, m)
    tl.store(final_ptr + bh.to(tl.int64) * S + offs, state, mask=mask)


@triton.jit
def _mlstm_chunk_output_kernel(
    q_ptr, k_ptr, v_ptr, i_ptr, f_ptr,  # (B·H, L, Dk) (B·H, L, Dk) (B·H, L, Dv) (B·H, L) (B·H, L)
    states_ptr, nstates_ptr, mstart_ptr,  # (B·H, nc, Dv, Dk) (B·H, nc, Dk) (B·H, nc) float32 entering states
    h_ptr,  # (B·H, L, Dv) out
    m_out_ptr, den_out_ptr,  # (B·H, L) float32 out: m_t and den_t, kept for the backward
    L, Dk, Dv, Q, nc, scale,
    BLOCK_Q: tl.constexpr, BLOCK_DK: tl.constexpr, BLOCK_DV: tl.constexpr,
    DOT_PREC: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    c, bh, pid_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    row, valid, ig, b, b_end = _gates(i_ptr, f_ptr, bh, c, L, Q, BLOCK_Q)
    m0 = tl.load(mstart_ptr + bh * nc + c)
    offs_k = tl.arange(0, BLOCK_DK)
    offs_v = pid_v * BLOCK_DV + tl.arange(0, BLOCK_DV)
    mask_k = valid[:, None] & (offs_k < Dk)[None, :]
    q = tl.load(q_ptr + row[:, None] * Dk + offs_k[None, :], mask=mask_k, other=0.0)  # (BLOCK_Q, BLOCK_DK)
    k = tl.load(k_ptr + row[:, None] * Dk + offs_k[None, :], mask=mask_k, other=0.0)  # (BLOCK_Q, BLOCK_DK)
    mask_v = valid[:, None] & (offs_v < Dv)[None, :]
    v = tl.load(v_ptr + row[:, None] * Dv + offs_v[None, :], mask=mask_v, other=0.0)  # (BLOCK_Q, BLOCK_DV)

    log_d = _log_decay(b, ig, valid, BLOCK_Q)  # (BLOCK_Q, BLOCK_Q)
    m = tl.maximum(b + m0, tl.max(log_d, axis=1))  # (BLOCK_Q,) the recurrence's m_t
    p = _dot(q, tl.trans(k), DOT_PREC, UPCAST) * scale * tl.exp(log_d - m[:, None])  # (BLOCK_Q, BLOCK_Q)
    g = tl.exp(b + m0 - m)  # (BLOCK_Q,) weight of the entering state

    base = (bh * nc + c).to(tl.int64)
    C0 = tl.load(
        states_ptr + base * Dv * Dk + offs_v[:, None] * Dk + offs_k[None, :],
        mask=(offs_v < Dv)[:, None] & (offs_k < Dk)[None, :],
        other=0.0,
    )  # (BLOCK_DV, BLOCK_DK) float32
    n0 = tl.load(nstates_ptr + base * Dk + offs_k, mask=offs_k < Dk, other=0.0)  # (BLOCK_DK,)
    num = _dot(p.to(v.dtype), v, DOT_PREC, UPCAST)  # (BLOCK_Q, BLOCK_DV)
    num += g[:, None] * _dot(q, tl.trans(C0).to(q.dtype), DOT_PREC, UPCAST)
    den = tl.sum(p, axis=1) + g * tl.sum(q.to(tl.float32) * n0[None, :], axis=1)  # (BLOCK_Q,)

    # h = num / max(|den|, exp(-m)), evaluated so that exp(-m) never overflows (as the reference does)
    m_safe = tl.maximum(m, LOG_FLOOR)
    sc = tl.exp(m - m_safe)
    inv = sc / tl.maximum(tl.abs(den) * sc, tl.exp(-m_safe))  # (BLOCK_Q,)
    tl.store(
        h_ptr + row[:, None] * Dv + offs_v[None, :],
        (num * inv[:, None]).to(h_ptr.dtype.element_ty),
        mask=mask_v,
    )
    if pid_v == 0:
        tl.store(m_out_ptr + row, m, mask=valid)
        tl.store(den_out_ptr + row, den, mask=valid)


@triton.jit
def _mlstm_bwd_prep_kernel(
    h_ptr, dh_ptr,  # (B·H·L, Dv)
    m_ptr, den_ptr,  # (B·H·L,) float32 from the forward
    inv_ptr, dd_ptr,  # (B·H·L,) float32 out: 1/max(|den|, exp(-m)) and dL/d den
    n_rows, Dv,
    BLOCK_T: tl.constexpr, BLOCK_DV: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)  # (BLOCK_T,)
    ok = rows < n_rows
    rows64 = rows.to(tl.int64)
    dh_h = tl.zeros((BLOCK_T,), dtype=tl.float32)
    for v0 in range(0, Dv, BLOCK_DV):
        offs_v = v0 + tl.arange(0, BLOCK_DV)
        mask = ok[:, None] & (offs_v < Dv)[None, :]
        h = tl.load(h_ptr + rows64[:, None] * Dv + offs_v[None, :], mask=mask, other=0.0).to(tl.float32)
        dh = tl.load(dh_ptr + rows64[:, None] * Dv + offs_v[None, :], mask=mask, other=0.0).to(tl.float32)
        dh_h += tl.sum(h * dh, axis=1)
    m = tl.load(m_ptr + rows, mask=ok, other=0.0)
    den = tl.load(den_ptr + rows, mask=ok, other=1.0)
    m_safe = tl.maximum(m, LOG_FLOOR)
    sc = tl.exp(m - m_safe)
    floor = tl.exp(-m_safe)
    inv = sc / tl.maximum(tl.abs(den) * sc, floor)
    sign = tl.where(den >= 0, 1.0, -1.0)
    dd = tl.where(tl.abs(den) * sc > floor, -dh_h * sign * inv, 0.0)
    tl.store(inv_ptr + rows, inv, mask=ok)
    tl.store(dd_ptr + rows, dd, mask=ok)


@triton.jit
def _mlstm_bwd_dqk_kernel(
    q_ptr, k_ptr, v_ptr, i_ptr, f_ptr, dh_ptr,
    m_ptr, inv_ptr, dd_ptr,  # (B·H, L) float32
    states_ptr, nstates_ptr, mstart_ptr, mfinal_ptr,  # forward entering states (B·H, nc, ...), final m (B·H,)
    dstates_ptr, dnstates_ptr,  # (B·H, nc, Dv, Dk), (B·H, nc, Dk) float32: gradient at each chunk's end
    dq_ptr, dk_ptr,  # (B·H, L, Dk) out
    di_ptr, db_ptr,  # (B·H, L) float32 out: k̂·dk̂ and q·dq - k̂·dk̂
    L, Dk, Dv, Q, nc, scale,
    BLOCK_Q: tl.constexpr, BLOCK_DK: tl.constexpr, BLOCK_DV: tl.constexpr,
    DOT_PREC: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    c, bh = tl.program_id(0), tl.program_id(1)
    row, valid, ig, b, b_end = _gates(i_ptr, f_ptr, bh, c, L, Q, BLOCK_Q)
    m0 = tl.load(mstart_ptr + bh * nc + c)
    m_end = _chunk_end_m(mstart_ptr, mfinal_ptr, bh, c, nc)
    m = tl.load(m_ptr + row, mask=valid, other=0.0)  # (BLOCK_Q,)
    inv = tl.load(inv_ptr + row, mask=valid, other=0.0)
    dd = tl.load(dd_ptr + row, mask=valid, other=0.0)
    decay = tl.exp(_log_decay(b, ig, valid, BLOCK_Q) - m[:, None])  # (BLOCK_Q, BLOCK_Q) D[t, s]
    g = tl.exp(tl.where(valid, b + m0 - m, float("-inf")))  # (BLOCK_Q,) entering state -> step t
    w = tl.exp(b_end - b + ig - m_end)  # (BLOCK_Q,) step s -> chunk end, 0 where invalid

    offs_k = tl.arange(0, BLOCK_DK)
    mask_k = valid[:, None] & (offs_k < Dk)[None, :]
    q = tl.load(q_ptr + row[:, None] * Dk + offs_k[None, :], mask=mask_k, other=0.0)  # (BLOCK_Q, BLOCK_DK)
    k = tl.load(k_ptr + row[:, None] * Dk + offs_k[None, :], mask=mask_k, other=0.0)  # (BLOCK_Q, BLOCK_DK)
    base = (bh * nc + c).to(tl.int64)

    dp = tl.zeros((BLOCK_Q, BLOCK_Q), dtype=tl.float32)  # dn_t·v_s
    dq_state = tl.zeros((BLOCK_Q, BLOCK_DK), dtype=tl.float32)  # dn_t C0
    dk_state = tl.zeros((BLOCK_Q, BLOCK_DK), dtype=tl.float32)  # v_s dC_end
    for v0 in range(0, Dv, BLOCK_DV):
        offs_v = v0 + tl.arange(0, BLOCK_DV)
        mask_v = valid[:, None] & (offs_v < Dv)[None, :]
        v = tl.load(
            v_ptr + row[:, None] * Dv + offs_v[None, :], mask=mask_v, other=0.0
        )  # (BLOCK_Q, BLOCK_DV)
        dh = tl.load(dh_ptr + row[:, None] * Dv + offs_v[None, :], mask=mask_v, other=0.0)
        dn = (dh.to(tl.float32) * inv[:, None]).to(v.dtype)  # (BLOCK_Q, BLOCK_DV)
        s_offs = base * Dv * Dk + offs_v[:, None] * Dk + offs_k[None, :]
        mask_s = (offs_v < Dv)[:, None] & (offs_k < Dk)[None, :]
        C0 = tl.load(states_ptr + s_offs, mask=mask_s, other=0.0)  # (BLOCK_DV, BLOCK_DK) float32
        dC = tl.load(dstates_ptr + s_offs, mask=mask_s, other=0.0)  # (BLOCK_DV, BLOCK_DK) float32
        dp += _dot(dn, tl.trans(v), DOT_PREC, UPCAST)
        dq_state += _dot(dn, C0.to(v.dtype), DOT_PREC, UPCAST)
        dk_state += _dot(v, dC.to(v.dtype), DOT_PREC, UPCAST)

    ds = decay * (dp + dd[:, None])  # (BLOCK_Q, BLOCK_Q) dL/d(q_t·k̂_s)
    n0 = tl.load(nstates_ptr + base * Dk + offs_k, mask=offs_k < Dk, other=0.0)  # (BLOCK_DK,)
    dn_end = tl.load(dnstates_ptr + base * Dk + offs_k, mask=offs_k < Dk, other=0.0)  # (BLOCK_DK,)
    dq = _dot(ds.to(k.dtype), k, DOT_PREC, UPCAST) * scale + g[:, None] * (
        dq_state + dd[:, None] * n0[None, :]
    )
    dk_hat = _dot(tl.trans(ds).to(q.dtype), q, DOT_PREC, UPCAST) + w[:, None] * (dk_state + dn_end[None, :])
    tl.store(dq_ptr + row[:, None] * Dk + offs_k[None, :], dq.to(dq_ptr.dtype.element_ty), mask=mask_k)
    tl.store(
        dk_ptr + row[:, None] * Dk + offs_k[None, :],
        (dk_hat * scale).to(dk_ptr.dtype.element_ty),
        mask=mask_k,
    )
    di = tl.sum(k.to(tl.float32) * scale * dk_hat, axis=1)  # (BLOCK_Q,) k̂_s·dk̂_s
    tl.store(di_ptr + row, di, mask=valid)
    tl.store(db_ptr + row, tl.sum(q.to(tl.float32) * dq, axis=1) - di, mask=valid)


@triton.jit
def _mlstm_bwd_dv_kernel(
    q_ptr, k_ptr, i_ptr, f_ptr, dh_ptr,
    m_ptr, inv_ptr,  # (B·H, L) float32
    mstart_ptr, mfinal_ptr,  # (B·H, nc), (B·H,) float32
    dstates_ptr,  # (B·H, nc, Dv, Dk) float32: gradient at each chunk's end state
    dv_ptr,  # (B·H, L, Dv) out
    L, Dk, Dv, Q, nc, scale,
    BLOCK_Q: tl.constexpr, BLOCK_DK: tl.constexpr, BLOCK_DV: tl.constexpr,
    DOT_PREC: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    c, bh, pid_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    row, valid, ig, b, b_end = _gates(i_ptr, f_ptr, bh, c, L, Q, BLOCK_Q)
    m_end = _chunk_end_m(mstart_ptr, mfinal_ptr, bh, c, nc)
    m = tl.load(m_ptr + row, mask=valid, other=0.0)
    inv = tl.load(inv_ptr + row, mask=valid, other=0.0)
    w = tl.exp(b_end - b + ig - m_end)  # (BLOCK_Q,)
    offs_k = tl.arange(0, BLOCK_DK)
    offs_v = pid_v * BLOCK_DV + tl.arange(0, BLOCK_DV)
    mask_k = valid[:, None] & (offs_k < Dk)[None, :]
    mask_v = valid[:, None] & (offs_v < Dv)[None, :]
    q = tl.load(q_ptr + row[:, None] * Dk + offs_k[None, :], mask=mask_k, other=0.0)  # (BLOCK_Q, BLOCK_DK)
    k = tl.load(k_ptr + row[:, None] * Dk + offs_k[None, :], mask=mask_k, other=0.0)  # (BLOCK_Q, BLOCK_DK)
    dh = tl.load(dh_ptr + row[:, None] * Dv + offs_v[None, :], mask=mask_v, other=0.0)  # (BLOCK_Q, BLOCK_DV)
    dn = (dh.to(tl.float32) * inv[:, None]).to(q.dtype)

    # p[t, s] = D[t, s] (q_t·k̂_s); dv_s = sum_t p[t, s] dn_t + w_s dC_end k̂_s
    p = (
        _dot(q, tl.trans(k), DOT_PREC, UPCAST)
        * scale
        * tl.exp(_log_decay(b, ig, valid, BLOCK_Q) - m[:, None])
    )
    dv = _dot(tl.trans(p).to(q.dtype), dn, DOT_PREC, UPCAST)  # (BLOCK_Q, BLOCK_DV)
    dC = tl.load(
        dstates_ptr + (bh * nc + c).to(tl.int64) * Dv * Dk + offs_v[:, None] * Dk + offs_k[None, :],
        mask=(offs_v < Dv)[:, None] & (offs_k < Dk)[None, :],
        other=0.0,
    )  # (BLOCK_DV, BLOCK_DK)
    dv += (w * scale)[:, None] * _dot(k, tl.trans(dC).to(k.dtype), DOT_PREC, UPCAST)
    tl.store(dv_ptr + row[:, None] * Dv + offs_v[None, :], dv.to(dv_ptr.dtype.element_ty), mask=mask_v)


def _empty(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised buffer for a kernel to fill (NaN-filled when POISON_BUFFERS is set)."""
    if POISON_BUFFERS:
        return torch.full(shape, float("nan"), device=device, dtype=dtype)
    return torch.empty(shape, device=device, dtype=dtype)


class _Plan:
    """Sizes, tiles and grids of one call: Q-step chunks in BLOCK_Q-row tiles, Dk whole, Dv in blocks."""

    def __init__(self, q: torch.Tensor, v: torch.Tensor, chunk_size: int):
        self.B, self.H, self.L, self.Dk = q.shape
        self.BH, self.Dv = self.B * self.H, v.shape[-1]
        self.Q = min(chunk_size, self.L)
        self.nc = triton.cdiv(self.L, self.Q)
        self.block_q = max(16, triton.next_power_of_2(self.Q))
        self.block_dk = max(16, triton.next_power_of_2(self.Dk))
        self.block_dv = min(MAX_BLOCK_DV, max(16, triton.next_power_of_2(self.Dv)))
        self.n_vblocks = triton.cdiv(self.Dv, self.block_dv)
        self.scale = self.Dk**-0.5
        self.device = q.device
        self.tiles = {
            "BLOCK_Q": self.block_q,
            "BLOCK_DK": self.block_dk,
            "BLOCK_DV": self.block_dv,
            "DOT_PREC": FP32_DOT_PRECISION if q.dtype == torch.float32 else "tf32",  # ignored for bf16
            "UPCAST": type(_mlstm_chunk_output_kernel).__name__ == "InterpretedFunction",
        }

    def dims(self) -> tuple:
        return self.L, self.Dk, self.Dv, self.Q, self.nc, self.scale

    def state_pass(self, states, mloc, bend, mstart, init, minit, mfinal, adjoint, fwd=None, store_m=False):
        """Run the chunk recurrence over ``states`` (BH, nc, S) in place; returns (last (BH, S), enddot)."""
        S = states.shape[-1]
        n_blocks = triton.cdiv(S, BLOCK_S)
        last = _empty((self.BH, S), self.device)  # (BH, S)
        enddot = _empty((self.BH, self.nc, n_blocks), self.device) if adjoint else None  # (BH, nc, n_blocks)
        fwd_states, fwd_final = fwd if adjoint else (states, last)
        _mlstm_state_pass_kernel[(self.BH, n_blocks)](
            states, mloc, bend, mstart,
            init if init is not None else states, minit if minit is not None else bend, last, mfinal,
            fwd_states, fwd_final, enddot if adjoint else mloc, S, self.nc, n_blocks,
            HAS_INIT=init is not None, ADJOINT=adjoint, STORE_M=store_m, BLOCK_S=BLOCK_S,
        )  # fmt: skip
        return last, enddot.sum(-1) if adjoint else None


def _forward_states(p: _Plan, q, k, v, i_pre, f_pre, C0, n0, m0):
    """States entering every chunk and the final state, float32: (C (BH, nc, Dv·Dk), n (BH, nc, Dk),
    m_start (BH, nc), b_end (BH, nc), C_final (BH, Dv·Dk), n_final (BH, Dk), m_final (BH,))."""
    states = _empty((p.BH, p.nc, p.Dv * p.Dk), p.device)  # (BH, nc, Dv·Dk)
    nstates = _empty((p.BH, p.nc, p.Dk), p.device)  # (BH, nc, Dk)
    mloc = _empty((p.BH, p.nc), p.device)  # (BH, nc)
    bend = _empty((p.BH, p.nc), p.device)  # (BH, nc)
    _mlstm_chunk_state_kernel[(p.nc, p.BH, p.n_vblocks)](
        v, k, i_pre, f_pre, mloc, mloc, mloc, mloc, states, nstates, mloc, bend, *p.dims(),
        ADJOINT=False, **p.tiles,
    )  # fmt: skip
    mstart = _empty((p.BH, p.nc), p.device)  # (BH, nc)
    mfinal = _empty((p.BH,), p.device)  # (BH,)
    C_fin, _ = p.state_pass(states, mloc, bend, mstart, C0, m0, mfinal, adjoint=False, store_m=True)
    n_fin, _ = p.state_pass(nstates, mloc, bend, mstart, n0, m0, mfinal, adjoint=False)
    return states, nstates, mstart, bend, C_fin, n_fin, mfinal


@torch.library.custom_op("genolong::mlstm_fwd", mutates_args=())
def _mlstm_fwd(
    q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, f_pre: Tensor,
    C0: Tensor | None, n0: Tensor | None, m0: Tensor | None, chunk_size: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """(h (B, H, L, Dv) in q's dtype, final C, n, m (float32), and for the backward the stabilizer m_t and
    the normaliser den_t, (B, H, L) float32 each)."""
    p = _Plan(q, v, chunk_size)
    states, nstates, mstart, _, C_fin, n_fin, m_fin = _forward_states(
        p, q, k, v, i_pre, f_pre, C0, n0, m0
    )
    h = _empty(v.shape, p.device, q.dtype)  # (B, H, L, Dv)
    m = _empty(i_pre.shape, p.device)  # (B, H, L) the stabilizer m_t
    den = _empty(i_pre.shape, p.device)  # (B, H, L) the normaliser's den_t
    _mlstm_chunk_output_kernel[(p.nc, p.BH, p.n_vblocks)](
        q, k, v, i_pre, f_pre, states, nstates, mstart, h, m, den, *p.dims(), **p.tiles
    )
    shape = (p.B, p.H)
    return h, C_fin.view(*shape, p.Dv, p.Dk), n_fin.view(*shape, p.Dk), m_fin.view(shape), m, den


@_mlstm_fwd.register_fake
def _(q, k, v, i_pre, f_pre, C0, n0, m0, chunk_size):
    B, H, _, Dk = q.shape
    f32 = dict(dtype=torch.float32)
    C, n, m = q.new_empty((B, H, v.shape[-1], Dk), **f32), q.new_empty((B, H, Dk), **f32), q.new_empty((B, H), **f32)
    return q.new_empty(v.shape), C, n, m, i_pre.new_empty(i_pre.shape, **f32), i_pre.new_empty(i_pre.shape, **f32)


@torch.library.custom_op("genolong::mlstm_bwd", mutates_args=())
def _mlstm_bwd(
    dh: Tensor | None, dC_fin: Tensor | None, dn_fin: Tensor | None, dm_fin: Tensor | None,
    q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, f_pre: Tensor, C0: Tensor | None, n0: Tensor | None,
    m0: Tensor | None, h: Tensor, m: Tensor, den: Tensor, chunk_size: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """(dq, dk, dv, di, df, dC0, dn0, dm0); the last three are empty without an initial state."""
    p = _Plan(q, v, chunk_size)
    dh = dh.contiguous() if dh is not None else torch.zeros_like(h)
    states, nstates, mstart, bend, C_fin, n_fin, m_fin = _forward_states(
        p, q, k, v, i_pre, f_pre, C0, n0, m0
    )

    inv = _empty(m.shape, p.device)  # (B, H, L)
    dd = _empty(m.shape, p.device)  # (B, H, L)
    n_rows = p.BH * p.L
    _mlstm_bwd_prep_kernel[(triton.cdiv(n_rows, 64),)](
        h, dh, m, den, inv, dd, n_rows, p.Dv, BLOCK_T=64, BLOCK_DV=p.block_dv
    )
    # the gradient reaching every chunk's end state: local adjoints, then the reverse recurrence
    dstates = _empty(states.shape, p.device)  # (BH, nc, Dv·Dk)
    dnstates = _empty(nstates.shape, p.device)  # (BH, nc, Dk)
    _mlstm_chunk_state_kernel[(p.nc, p.BH, p.n_vblocks)](
        dh, q, i_pre, f_pre, m, inv, dd, mstart, dstates, dnstates, m, m, *p.dims(),
        ADJOINT=True, **p.tiles,
    )  # fmt: skip

    def adjoint(local, d_final, fwd):
        d_final = d_final.reshape(p.BH, -1).contiguous() if d_final is not None else None
        return p.state_pass(local, bend, bend, mstart, d_final, None, m_fin, True, fwd)

    dC0, enddot_C = adjoint(dstates, dC_fin, (states, C_fin))  # (BH, Dv·Dk), (BH, nc)
    dn0, enddot_n = adjoint(dnstates, dn_fin, (nstates, n_fin))  # (BH, Dk), (BH, nc)

    dq = _empty(q.shape, p.device, q.dtype)  # (B, H, L, Dk)
    dk = _empty(k.shape, p.device, k.dtype)  # (B, H, L, Dk)
    di = _empty(m.shape, p.device)  # (B, H, L)
    db = _empty(m.shape, p.device)  # (B, H, L)
    _mlstm_bwd_dqk_kernel[(p.nc, p.BH)](
        q, k, v, i_pre, f_pre, dh, m, inv, dd, states, nstates, mstart, m_fin, dstates, dnstates,
        dq, dk, di, db, *p.dims(), **p.tiles, num_warps=8,  # 4 warps spill the (Q, Dk) accumulators
    )  # fmt: skip
    dv = _empty(v.shape, p.device, v.dtype)  # (B, H, L, Dv)
    _mlstm_bwd_dv_kernel[(p.nc, p.BH, p.n_vblocks)](
        q, k, i_pre, f_pre, dh, m, inv, mstart, m_fin, dstates, dv, *p.dims(), **p.tiles
    )

    # b_t (chunk-local sum of lf): the end state's share of its gradient goes to each chunk's last step
    last = torch.clamp(torch.arange(1, p.nc + 1, device=p.device) * p.Q, max=p.L) - 1  # (nc,)
    db = db.view(p.BH, p.L)
    db[:, last] += enddot_C + enddot_n  # (BH, nc)
    dlf = _chunk_local_reverse_cumsum(db, p.Q).view(p.B, p.H, p.L)  # (B, H, L)
    di = di.view(p.B, p.H, p.L)
    dm0 = None
    if C0 is not None:
        dm0 = (dC0 * C0.reshape(p.BH, -1)).sum(-1) + (dn0 * n0.reshape(p.BH, -1)).sum(-1)  # (BH,)
        dm0 = dm0.view(p.B, p.H)
    if any(t is not None for t in (dC_fin, dn_fin, dm_fin)):
        dm0 = _final_m_gradient(p, i_pre, f_pre, m0, C_fin, n_fin, dC_fin, dn_fin, dm_fin, di, dlf, dm0)
    df = dlf * torch.sigmoid(-f_pre.float())  # (B, H, L): d logsigmoid(f) / df = sigmoid(-f)
    if C0 is None:
        dC0, dn0, dm0 = (q.new_empty(0) for _ in range(3))  # three tensors: outputs may not alias
    else:
        dC0, dn0, dm0 = dC0.view(C0.shape), dn0.view(n0.shape), dm0.to(m0.dtype)
    return dq, dk, dv, di.to(i_pre.dtype), df.to(f_pre.dtype), dC0, dn0, dm0


@_mlstm_bwd.register_fake
def _(dh, dC_fin, dn_fin, dm_fin, q, k, v, i_pre, f_pre, C0, n0, m0, h, m, den, chunk_size):
    def like(t):
        return torch.empty_like(t) if t is not None else q.new_empty(0)

    return (torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), torch.empty_like(i_pre),
            torch.empty_like(f_pre), like(C0), like(n0), like(m0))  # fmt: skip


def _setup_context(ctx, inputs, output):
    *tensors, chunk_size = inputs
    h, _, _, _, m, den = output
    ctx.save_for_backward(*tensors, h, m, den)
    ctx.chunk_size = chunk_size
    ctx.set_materialize_grads(False)  # unused outputs' gradients arrive as None, not as zeros


def _backward(ctx, dh, dC_fin, dn_fin, dm_fin, _dm, _dden):
    saved = ctx.saved_tensors
    grads = _mlstm_bwd(dh, dC_fin, dn_fin, dm_fin, *saved, ctx.chunk_size)
    has_state = saved[5] is not None
    return *grads[:5], *(g if has_state else None for g in grads[5:]), None


_mlstm_fwd.register_autograd(_backward, setup_context=_setup_context)


def _chunk_local_reverse_cumsum(v: torch.Tensor, Q: int) -> torch.Tensor:
    """out[..., t] = sum of v[..., s] for s >= t in t's chunk of Q steps; v (R, L) -> (R, L)."""
    R, L = v.shape
    nc = -(-L // Q)
    padded = F.pad(v, (0, nc * Q - L)).view(R, nc, Q)  # (R, nc, Q)
    return padded.flip(-1).cumsum(-1).flip(-1).reshape(R, nc * Q)[:, :L]


def _final_m_gradient(p, i_pre, f_pre, m0, C_fin, n_fin, dC_fin, dn_fin, dm_fin, di, dlf, dm0):
    """Add the gradient that flows through the returned final stabilizer m_L to di, dlf (in place) and dm0.

    C_L = exp(-m_L)·C~_L and n_L likewise, so m_L receives dm_L - <dC_L, C_L> - <dn_L, n_L>; m_L =
    F_L + max(m_0, max_s (i_s - F_s)) (F the running sum of lf), whose gradient follows the argmax.
    """
    shape = (p.B, p.H)
    dm = dm_fin.float() if dm_fin is not None else torch.zeros(shape, device=p.device)  # (B, H)
    if dC_fin is not None:
        dm = dm - (dC_fin.float() * C_fin.view(*shape, p.Dv, p.Dk)).sum((-1, -2))
    if dn_fin is not None:
        dm = dm - (dn_fin.float() * n_fin.view(*shape, p.Dk)).sum(-1)
    F_run = F.logsigmoid(f_pre.float()).cumsum(-1)  # (B, H, L)
    start = m0.float() if m0 is not None else torch.zeros(shape, device=p.device)  # (B, H)
    j = torch.cat([start[..., None], i_pre.float() - F_run], dim=-1).argmax(-1)  # (B, H): 0 = the m_0 branch
    pos = torch.arange(p.L, device=p.device)  # (L,)
    di += dm[..., None] * (pos == j[..., None] - 1)  # the winning input gate
    dlf += dm[..., None] * (pos >= j[..., None])  # every lf after it
    if dm0 is not None:
        dm0 = dm0 + dm * (j == 0)
    return dm0


def _check(q, k, v, i_pre, f_pre, initial_state, chunk_size) -> None:
    """Raise UsageError for shapes, dtypes or devices the kernels cannot take."""
    if q.ndim != 4 or v.ndim != 4:
        raise UsageError(f"mlstm_triton: q must be (B, H, L, Dk) and v (B, H, L, Dv), got {tuple(q.shape)}")
    Bsz, H, L, Dk = q.shape
    Dv = v.shape[-1]
    expected = [("k", k, (Bsz, H, L, Dk)), ("v", v, (Bsz, H, L, Dv)), ("i_pre", i_pre, (Bsz, H, L))]
    expected.append(("f_pre", f_pre, (Bsz, H, L)))
    if initial_state is not None:
        if len(initial_state) != 3:
            raise UsageError("mlstm_triton: initial_state must be a tuple (C, n, m)")
        for name, t, shape in zip(
            "Cnm", initial_state, [(Bsz, H, Dv, Dk), (Bsz, H, Dk), (Bsz, H)], strict=True
        ):
            expected.append((f"initial_state {name}", t, shape))
    for name, t, shape in expected:
        if tuple(t.shape) != shape:
            raise UsageError(f"mlstm_triton: {name} has shape {tuple(t.shape)}, expected {shape}")
    if L < 1:
        raise UsageError("mlstm_triton: the sequence axis is empty")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise UsageError(f"mlstm_triton: chunk_size must be a positive integer, got {chunk_size!r}")
    tensors = [t for _, t, _ in expected] + [q]
    if any(t.dtype not in (torch.float32, torch.bfloat16, torch.float16) for t in tensors):
        raise UsageError("mlstm_triton: tensors must be float32, bfloat16 or float16")
    if len({t.device for t in tensors}) != 1:
        raise UsageError("mlstm_triton: all tensors must be on the same device")
    if q.device.type == "cpu" and type(_mlstm_chunk_output_kernel).__name__ != "InterpretedFunction":
        raise UsageError(
            "mlstm_triton needs CUDA tensors; got tensors on CPU",
            hint="set TRITON_INTERPRET=1 before genolong's Triton kernels are imported to run them on CPU",
        )


def mlstm_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    i_pre: torch.Tensor,
    f_pre: torch.Tensor,
    initial_state: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    return_final_state: bool = False,
    chunk_size: int = 64,
) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Stabilized mLSTM on Triton kernels; same contract as ``mlstm_reference``.

    q, k (B, H, L, Dk), v (B, H, L, Dv), i_pre, f_pre (B, H, L), initial_state (C, n, m) with shapes
    (B, H, Dv, Dk), (B, H, Dk), (B, H) or None. Returns h (B, H, L, Dv) in q's dtype [, final (C, n, m) in
    float32]. Differentiable in every tensor input, the initial state included. k and v are used in q's dtype.
    """
    _check(q, k, v, i_pre, f_pre, initial_state, chunk_size)
    C0, n0, m0 = (s.float().contiguous() for s in initial_state) if initial_state is not None else (None,) * 3
    h, C, n, m, _, _ = _mlstm_fwd(
        q.contiguous(),
        k.to(q.dtype).contiguous(),
        v.to(q.dtype).contiguous(),
        i_pre.contiguous(),
        f_pre.contiguous(),
        C0,
        n0,
        m0,
        chunk_size,
    )
    return (h, (C, n, m)) if return_final_state else h
