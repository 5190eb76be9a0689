"""Reference mLSTM (xLSTM's matrix LSTM, stabilized): the recurrence, one step at a time.

With k scaled by Dk^-1/2 and the state (C, n, m) starting at (0, 0, 0) unless given:

    lf_t = logsigmoid(f_pre_t)          m_t = max(lf_t + m_{t-1}, i_pre_t)
    i_t  = exp(i_pre_t - m_t)           f_t = exp(lf_t + m_{t-1} - m_t)
    C_t  = f_t·C_{t-1} + i_t·v_t k_tᵀ   n_t = f_t·n_{t-1} + i_t·k_t
    h_t  = C_t q_t / max(|n_tᵀ q_t|, exp(-m_t))

O(L) Python steps; slow, readable, and the spec the chunked path is tested against. Float32 inside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genolong.ops._precision import acc_dtype, autocast_off, upcast

# exp(-m) overflows float32 when m < -88; normalize() rescales before it gets there.
_LOG_FLOOR = -60.0

MLSTMState = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # C (B, H, Dv, Dk), n (B, H, Dk), m (B, H)


def normalize(num: torch.Tensor, den: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The mLSTM output ``num / max(|den|, exp(-m))`` for num (..., Dv), den (...), m (...).

    Evaluated as ``num·s / max(|den|·s, exp(-m'))`` with m' = max(m, -60) and s = exp(m - m'): the same number
    (s = 1 unless m < -60), but exp(-m) never overflows, so outputs and gradients stay finite when all input
    gates are very negative.
    """
    m_safe = m.clamp(min=_LOG_FLOOR)  # (...)
    scale = torch.exp(m - m_safe)  # (...): 1 unless m < -60
    denom = torch.maximum(den.abs() * scale, torch.exp(-m_safe))  # (...)
    return num * (scale / denom)[..., None]  # (..., Dv)


def zero_state(q: torch.Tensor, Dv: int) -> MLSTMState:
    """The empty state (C, n, m) = (0, 0, 0) in the accumulation dtype for q (B, H, L, Dk)."""
    Bsz, H, _, Dk = q.shape
    C = q.new_zeros(Bsz, H, Dv, Dk, dtype=acc_dtype(q))  # (B, H, Dv, Dk)
    n = q.new_zeros(Bsz, H, Dk, dtype=acc_dtype(q))  # (B, H, Dk)
    m = q.new_zeros(Bsz, H, dtype=acc_dtype(q))  # (B, H)
    return C, n, m


@autocast_off
def mlstm_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    i_pre: torch.Tensor,
    f_pre: torch.Tensor,
    initial_state: MLSTMState | None = None,
    return_final_state: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, MLSTMState]:
    """Step-by-step mLSTM. q, k (B, H, L, Dk), v (B, H, L, Dv), i_pre, f_pre (B, H, L),
    initial_state (C, n, m). Returns h (B, H, L, Dv) in q's dtype [, final state (C, n, m) in float32]."""
    Dk, Dv = q.shape[-1], v.shape[-1]
    qf = upcast(q)  # (B, H, L, Dk)
    kf = upcast(k) * Dk**-0.5  # (B, H, L, Dk)
    vf = upcast(v)  # (B, H, L, Dv)
    ig = upcast(i_pre)  # (B, H, L)
    lf = F.logsigmoid(upcast(f_pre))  # (B, H, L)
    C, n, m = zero_state(q, Dv) if initial_state is None else (upcast(s) for s in initial_state)
    hs = []
    # one step per position; unbind (rather than indexing [..., t]) keeps the backward pass linear in L
    steps = zip(*(t.unbind(2) for t in (qf, kf, vf, ig, lf)), strict=True)
    for q_t, k_t, v_t, i_t, lf_t in steps:  # (B, H, Dk), (B, H, Dk), (B, H, Dv), (B, H), (B, H)
        m_new = torch.maximum(lf_t + m, i_t)  # (B, H)
        i_gate = torch.exp(i_t - m_new)  # (B, H)
        f_gate = torch.exp(lf_t + m - m_new)  # (B, H)
        vk = v_t[..., :, None] * k_t[..., None, :]  # (B, H, Dv, Dk): v_t k_tᵀ
        C = f_gate[..., None, None] * C + i_gate[..., None, None] * vk  # (B, H, Dv, Dk)
        n = f_gate[..., None] * n + i_gate[..., None] * k_t  # (B, H, Dk)
        m = m_new
        num = torch.einsum("bhvk,bhk->bhv", C, q_t)  # (B, H, Dv)
        den = (n * q_t).sum(-1)  # (B, H)
        hs.append(normalize(num, den, m))  # (B, H, Dv)
    h = torch.stack(hs, dim=2).to(q.dtype)  # (B, H, L, Dv)
    return (h, (C, n, m)) if return_final_state else h
