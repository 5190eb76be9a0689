"""Chunkwise-parallel mLSTM: matmuls inside chunks, the stabilized (C, n, m) recurrence between them.

Unstabilized, the state is a decayed sum: C~_t = sum_s exp(F_t - F_s + i_s) v_s k_sᵀ (+ the decayed initial
state), F the running sum of lf = logsigmoid(f_pre). The recurrence's stabilizer has the closed form

    m_t = max(F_t - F_0 + m_0,  max_{s<=t} (F_t - F_s + i_s))

so inside a chunk of Q steps (b_t = the chunk's running sum of lf, S = segsum(lf), log D[t,s] = S[t,s] + i_s):

    m_t   = max(b_t + m_prev, max_s log D[t, s])              (exactly the recurrence's m_t)
    num_t = exp(b_t + m_prev - m_t) · C_prev q_t + sum_s exp(log D[t,s] - m_t) (k_s·q_t) v_s
    den_t = exp(b_t + m_prev - m_t) · n_prevᵀq_t + sum_s exp(log D[t,s] - m_t) (k_s·q_t)
    h_t   = num_t / max(|den_t|, exp(-m_t))

and every exponent is <= 0. Between chunks, (C, n, m) advance from per-chunk summaries (their own stabilizer
m_loc), a group of chunks at a time (`_states_after`), so the final state equals the recurrence's, m included.

Gradients skip the stabilizers: h is the same function of the inputs whatever m is (num and den both carry
exp(-m)), so every max() that picks a stabilizer is computed detached (forward+backward 15% faster on a CPU
at B=8, H=4, L=1024, Dh=32). The final state is different, (C, n) = (C~, n~)·exp(-m) is a rescaled state,
so its m keeps an exact gradient and (C, n) get the matching exp(-m) term (`_with_live_stabilizer`).

Memory is O(L·Q) for the (Q, Q) masks and O(L/Q · Dv·Dk) for the chunk states: linear in L. Float32 inside.
L is padded to whole chunks with q = k = v = 0, lf = 0 and i = -inf, steps that leave (C, n, m) unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genolong.ops._chunking import pad_length, segsum
from genolong.ops._precision import autocast_off, upcast
from genolong.ops.mlstm.reference import MLSTMState, normalize, zero_state


def _chunk_states(
    state: MLSTMState,
    log_to_end: torch.Tensor,
    chunk_lf: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
) -> tuple[MLSTMState, MLSTMState]:
    """The (C, n, m) entering every chunk, and the final one.

    log_to_end (B, H, nc, Q): log weight of step s in its chunk's end state; chunk_lf (B, H, nc): the chunk's
    summed lf; k (B, H, nc, Q, Dk), v (B, H, nc, Q, Dv).
    """
    m_loc = log_to_end.detach().amax(dim=-1)  # (B, H, nc): the chunk's own stabilizer
    w = torch.exp(log_to_end - m_loc[..., None])  # (B, H, nc, Q)
    C_loc = torch.einsum("bhcs,bhcsv,bhcsk->bhcvk", w, v, k)  # (B, H, nc, Dv, Dk)
    n_loc = torch.einsum("bhcs,bhcsk->bhck", w, k)  # (B, H, nc, Dk)
    m0, starts = state[2], []
    # split, not [:, :, group] slices in the loop: those make backward add a full-size zero gradient per group
    per_group = (t.split(_GROUP, dim=2) for t in (chunk_lf, m_loc, C_loc, n_loc))
    for lf_g, m_loc_g, C_loc_g, n_loc_g in zip(*per_group, strict=True):
        after = _states_after(state, lf_g, m_loc_g, C_loc_g, n_loc_g)
        entering = (torch.cat([s0[:, :, None], s[:, :, :-1]], dim=2) for s0, s in zip(state, after, strict=True))
        starts.append(tuple(entering))  # entering chunk c = after chunk c - 1
        state = tuple(s[:, :, -1] for s in after)
    C_start, n_start, m_start = (torch.cat(s, dim=2) for s in zip(*starts, strict=True))
    return (C_start, n_start, m_start), _with_live_stabilizer(state, m0, log_to_end, chunk_lf)


# Chunk states are passed in groups of this many chunks: a (G, G) matrix of decays inside a group, one Python
# step per group. Memory O(G) per chunk; for L <= G * chunk_size (most training windows) a single step.
_GROUP = 64


def _states_after(
    state: MLSTMState, lf: torch.Tensor, m_loc: torch.Tensor, C_loc: torch.Tensor, n_loc: torch.Tensor
) -> MLSTMState:
    """The (C, n, m) after each of G consecutive chunks, from the state entering the first.

    lf, m_loc (B, H, G): summed lf and own stabilizer of each chunk; C_loc (B, H, G, Dv, Dk), n_loc (B, H, G, Dk)
    the chunk summaries. The recurrence C_c = exp(lf_c) C_{c-1} + exp(m_loc_c) C_loc_c, unrolled:
    log weight of chunk c' in the state after chunk c is segsum(lf)[c, c'] + m_loc_c' (c' <= c), of the entering
    state lf_0 + ... + lf_c + m; the stabilizer m_c is the largest of them, exactly the recurrence's.
    """
    C, n, m = state
    log_w = segsum(lf) + m_loc[..., None, :]  # (B, H, G, G), -inf for c' > c
    log_w0 = lf.cumsum(dim=-1) + m[..., None]  # (B, H, G)
    m_after = torch.maximum(log_w0, log_w.amax(dim=-1)).detach()  # (B, H, G)
    w = torch.exp(log_w - m_after[..., None])  # (B, H, G, G)
    w0 = torch.exp(log_w0 - m_after)  # (B, H, G)
    C_after = w0[..., None, None] * C[:, :, None] + torch.einsum("bhcd,bhdvk->bhcvk", w, C_loc)  # (B, H, G, Dv, Dk)
    n_after = w0[..., None] * n[:, :, None] + torch.einsum("bhcd,bhdk->bhck", w, n_loc)  # (B, H, G, Dk)
    return C_after, n_after, m_after


def _with_live_stabilizer(
    final: MLSTMState, m0: torch.Tensor, log_to_end: torch.Tensor, chunk_lf: torch.Tensor
) -> MLSTMState:
    """The final (C, n, m), unchanged in value, with the gradient of m that the detached loop left out.

    m_final = max(m0 + sum of all lf, max over chunks c of (m_loc_c + the lf summed after chunk c)); with
    delta = m_final - m_final.detach() (zero, carrying dm), C·exp(-delta) adds the -C·dm term of C = C~·exp(-m).
    """
    C, n, m = final
    after = chunk_lf.flip(-1).cumsum(-1).flip(-1) - chunk_lf  # (B, H, nc): lf summed over later chunks
    candidates = torch.cat([(m0 + chunk_lf.sum(-1))[..., None], log_to_end.amax(dim=-1) + after], dim=-1)
    m_live = candidates.amax(dim=-1)  # (B, H): equals m up to rounding
    delta = m_live - m_live.detach()  # (B, H): zero
    scale = torch.exp(-delta)  # (B, H): one
    return C * scale[..., None, None], n * scale[..., None], m + delta


@autocast_off
def mlstm_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    i_pre: torch.Tensor,
    f_pre: torch.Tensor,
    initial_state: MLSTMState | None = None,
    return_final_state: bool = False,
    chunk_size: int = 64,
) -> torch.Tensor | tuple[torch.Tensor, MLSTMState]:
    """Chunked mLSTM, same contract as ``mlstm_reference``; ``chunk_size`` is Q (any value >= 1)."""
    Bsz, H, L, Dk = q.shape
    Dv = v.shape[-1]
    Q = min(chunk_size, L)
    nc = -(-L // Q)

    def chunks(t: torch.Tensor, value: float = 0.0) -> torch.Tensor:  # (B, H, L, ...) -> (B, H, nc, Q, ...)
        t = pad_length(t, dim=2, multiple=Q, value=value)
        return t.reshape(Bsz, H, nc, Q, *t.shape[3:])

    qc = chunks(upcast(q))  # (B, H, nc, Q, Dk)
    kc = chunks(upcast(k) * Dk**-0.5)  # (B, H, nc, Q, Dk)
    vc = chunks(upcast(v))  # (B, H, nc, Q, Dv)
    ic = chunks(upcast(i_pre), value=float("-inf"))  # (B, H, nc, Q)
    lfc = chunks(F.logsigmoid(upcast(f_pre)))  # (B, H, nc, Q)

    b = lfc.cumsum(dim=-1)  # (B, H, nc, Q): lf summed from the chunk start to t
    log_D = segsum(lfc) + ic[..., None, :]  # (B, H, nc, Q, Q): log weight of step s at step t, -inf for s > t
    state = zero_state(q, Dv) if initial_state is None else tuple(upcast(s) for s in initial_state)
    (C0, n0, m0), final = _chunk_states(state, log_D[..., -1, :], b[..., -1], kc, vc)

    m = torch.maximum(b + m0[..., None], log_D.amax(dim=-1)).detach()  # (B, H, nc, Q): the recurrence's m_t
    g = torch.exp(b + m0[..., None] - m)  # (B, H, nc, Q): weight of the state entering the chunk
    scores = (qc @ kc.transpose(-1, -2)) * torch.exp(log_D - m[..., None])  # (B, H, nc, Q, Q)
    num = scores @ vc + g[..., None] * torch.einsum("bhcvk,bhctk->bhctv", C0, qc)  # (B, H, nc, Q, Dv)
    den = scores.sum(-1) + g * torch.einsum("bhck,bhctk->bhct", n0, qc)  # (B, H, nc, Q)

    # drop the padding before dividing (padded rows have q = 0, i.e. 0 / 0)
    num = num.reshape(Bsz, H, nc * Q, Dv)[:, :, :L]  # (B, H, L, Dv)
    den = den.reshape(Bsz, H, nc * Q)[:, :, :L]  # (B, H, L)
    m = m.reshape(Bsz, H, nc * Q)[:, :, :L]  # (B, H, L)
    h = normalize(num, den, m).to(q.dtype)  # (B, H, L, Dv)
    return (h, final) if return_final_state else h
