"""Reference SSD scan (Mamba2): the selective state-space recurrence, one step at a time.

For each head h (using B/C group g = h // (H // G)), with state S of shape (P, N):

    S_t = exp(dt_t · A_h) · S_{t-1}  +  dt_t · x_t ⊗ B_t
    y_t = S_t · C_t  +  D_h · x_t

O(L) Python steps; slow, readable, and the spec the chunked path is tested against. Float32 inside.
"""

from __future__ import annotations

import torch

from genolong.ops._precision import acc_dtype, autocast_off, upcast


@autocast_off
def ssd_scan_reference(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
    return_final_state: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Step-by-step SSD. x (Bt, L, H, P), dt (Bt, L, H), A (H,), B/C (Bt, L, G, N), D (H,),
    initial_state (Bt, H, P, N). Returns y (Bt, L, H, P) in x's dtype [, final state (Bt, H, P, N)]."""
    Bt, L, H, P = x.shape
    G, N = B.shape[2], B.shape[3]
    xf = upcast(x)  # (Bt, L, H, P)
    dtf = upcast(dt)  # (Bt, L, H)
    Af = upcast(A)  # (H,)
    Bh = upcast(B).repeat_interleave(H // G, dim=2)  # (Bt, L, H, N): each head sees its group's B
    Ch = upcast(C).repeat_interleave(H // G, dim=2)  # (Bt, L, H, N)
    if initial_state is None:
        S = x.new_zeros(Bt, H, P, N, dtype=acc_dtype(x))  # (Bt, H, P, N)
    else:
        S = upcast(initial_state)  # (Bt, H, P, N)
    ys = []
    # one step per position; unbind (rather than indexing [:, t]) keeps the backward pass linear in L
    steps = zip(xf.unbind(1), dtf.unbind(1), Bh.unbind(1), Ch.unbind(1), strict=True)
    for x_t, dt_t, B_t, C_t in steps:  # (Bt, H, P), (Bt, H), (Bt, H, N), (Bt, H, N)
        decay = torch.exp(dt_t * Af)  # (Bt, H)
        inp = (dt_t[..., None] * x_t)[..., :, None] * B_t[..., None, :]  # (Bt, H, P, N): dt_t x_t ⊗ B_t
        S = decay[..., None, None] * S + inp  # (Bt, H, P, N)
        y_t = torch.einsum("bhpn,bhn->bhp", S, C_t)  # (Bt, H, P)
        if D is not None:
            y_t = y_t + upcast(D)[:, None] * x_t  # (Bt, H, P)
        ys.append(y_t)
    y = torch.stack(ys, dim=1).to(x.dtype)  # (Bt, L, H, P)
    return (y, S) if return_final_state else y
