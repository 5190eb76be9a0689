"""Chunked SSD scan (Mamba2 "state space duality"): matmuls inside chunks, a short recurrence between them.

The sequence is cut into chunks of Q steps. With a_t = dt_t·A_h (a log-decay) and xdt_t = dt_t·x_t:

- inside a chunk (the quadratic, attention-like form):
      y_t += sum_{s<=t in chunk} (C_t·B_s) · exp(a_{s+1} + ... + a_t) · xdt_s
  the decay mask exp(segsum(a)) is (Q, Q) per chunk and head;
- each chunk's own contribution to the state at its end:
      S_loc = sum_s exp(a_{s+1} + ... + a_end) · xdt_s ⊗ B_s              (P, N)
- between chunks, the state recurrence over chunks only (L/Q steps):
      S_end = exp(a_1 + ... + a_end) · S_start + S_loc
- the state entering a chunk reaches step t with decay exp(a_1 + ... + a_t):
      y_t += exp(a_1 + ... + a_t) · S_start · C_t

Memory is O(L·Q) for the masks and O(L/Q · P·N) for the chunk states: linear in L. Float32 inside.
L is padded to a whole number of chunks with dt = x = B = C = 0, which leaves the state untouched.
"""

from __future__ import annotations

import torch

from genolong.ops._chunking import pad_length, segsum
from genolong.ops._precision import acc_dtype, autocast_off, upcast


@autocast_off
def ssd_scan_chunked(
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
    """Chunked SSD, same contract as ``ssd_scan_reference``; ``chunk_size`` is Q (any value >= 1)."""
    Bt, L, H, P = x.shape
    G, N = B.shape[2], B.shape[3]
    R = H // G  # heads per B/C group
    Q = min(chunk_size, L)
    nc = -(-L // Q)  # number of chunks

    def chunks(t: torch.Tensor) -> torch.Tensor:  # (Bt, L, ...) -> (Bt, nc, Q, ...), float32, zero-padded
        t = pad_length(upcast(t), dim=1, multiple=Q)
        return t.reshape(Bt, nc, Q, *t.shape[2:])

    xc = chunks(x).reshape(Bt, nc, Q, G, R, P)  # (Bt, nc, Q, G, R, P)
    dtc = chunks(dt).reshape(Bt, nc, Q, G, R)  # (Bt, nc, Q, G, R)
    Bc = chunks(B)  # (Bt, nc, Q, G, N)
    Cc = chunks(C)  # (Bt, nc, Q, G, N)
    a = (dtc * upcast(A).reshape(G, R)).permute(0, 3, 4, 1, 2)  # (Bt, G, R, nc, Q) log-decays
    xdt = xc * dtc[..., None]  # (Bt, nc, Q, G, R, P)

    a_cum = a.cumsum(dim=-1)  # (Bt, G, R, nc, Q): a_1 + ... + a_t within the chunk
    decay = torch.exp(segsum(a))  # (Bt, G, R, nc, Q, Q): exp(a_{s+1} + ... + a_t), 0 above the diagonal

    # inside chunks: y_t = sum_s (C_t . B_s) decay[t, s] xdt_s
    CB = torch.einsum("bctgn,bcsgn->bgcts", Cc, Bc)  # (Bt, G, nc, Q, Q)
    scores = CB[:, :, None] * decay  # (Bt, G, R, nc, Q, Q)
    y = torch.einsum("bgrcts,bcsgrp->bctgrp", scores, xdt)  # (Bt, nc, Q, G, R, P)

    # each chunk's own state at its end, then the recurrence over chunks
    to_end = decay[..., -1, :]  # (Bt, G, R, nc, Q): exp(a_{s+1} + ... + a_end)
    S_loc = torch.einsum("bgrcs,bcsgrp,bcsgn->bcgrpn", to_end, xdt, Bc)  # (Bt, nc, G, R, P, N)
    chunk_decay = torch.exp(a_cum[..., -1]).permute(0, 3, 1, 2)  # (Bt, nc, G, R)
    if initial_state is None:
        S = x.new_zeros(Bt, G, R, P, N, dtype=acc_dtype(x))  # (Bt, G, R, P, N)
    else:
        S = upcast(initial_state).reshape(Bt, G, R, P, N)  # (Bt, G, R, P, N)
    S_start = []
    # unbind, not [:, c]: indexing in a loop would make backward O(nc^2) (one full-size zero grad per step)
    for decay_c, S_loc_c in zip(chunk_decay.unbind(1), S_loc.unbind(1), strict=True):
        S_start.append(S)
        S = decay_c[..., None, None] * S + S_loc_c  # (Bt, G, R, P, N)
    S_start = torch.stack(S_start, dim=1)  # (Bt, nc, G, R, P, N)

    # the state entering each chunk, decayed to step t and read out by C_t
    y_in = torch.einsum("bcgrpn,bctgn->bctgrp", S_start, Cc)  # (Bt, nc, Q, G, R, P)
    y = y + y_in * torch.exp(a_cum).permute(0, 3, 4, 1, 2)[..., None]  # (Bt, nc, Q, G, R, P)
    if D is not None:
        y = y + upcast(D).reshape(G, R, 1) * xc  # (Bt, nc, Q, G, R, P)

    y = y.reshape(Bt, nc * Q, H, P)[:, :L].to(x.dtype)  # (Bt, L, H, P)
    if return_final_state:
        return y, S.reshape(Bt, H, P, N)
    return y
