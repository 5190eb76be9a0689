"""Triton kernels for ``short_conv``: causal depthwise convolution with a short kernel (W <= 8), fused SiLU.

    z[b,d,t] = sum_{j=0..W-1} w[d,j]·x[b,d,t-(W-1)+j] + bias[d]      (x = 0 before t = 0)
    y = z, or y = silu(z) with ``activation="silu"``

Tiling: one program owns a (BLOCK_D channels) x (BLOCK_L positions) tile of one batch row; L is the fastest
axis in memory, so every load and store is contiguous along the tile's rows. The W taps are unrolled at
compile time (W is a constexpr): each tap is one shifted, masked load of the same x rows, which the L1/L2
cache serves after the first, so device memory sees each x element read once and each y written once.

Backward (one kernel): dx[t] = sum_j w[j]·gz[t + (W-1) - j] with gz = gy·silu'(z) (or gy). With SiLU, z at the
W shifted positions is recomputed from x instead of being stored (W² cached loads, no extra pass over memory).
The same program reduces its tile's contribution to dw[d, j] = sum_t gz[t]·x[t - (W-1) + j] and dbias[d]; the
per-tile partial sums, (B, n_tiles, D, W) in float32, are summed in torch: deterministic, no atomics.

Registered as torch custom ops ``genolong::short_conv_fwd`` / ``genolong::short_conv_bwd`` with fake (meta)
implementations and autograd, so ``torch.compile`` traces through ``short_conv_triton`` as one opaque node.
On CPU tensors the kernels run only under the Triton interpreter (``TRITON_INTERPRET=1`` set before this
module is imported).
"""

import torch
import triton
import triton.language as tl

from genolong.errors import UsageError

__all__ = ["short_conv_triton"]

MAX_WIDTH = 8
ACTIVATIONS = (None, "silu")
# Tests set this to True: every buffer the kernels must fill is then pre-filled with NaN, so that an element a
# kernel forgets to write shows up as a NaN in the results.
POISON_BUFFERS = False
# Tile of one program: 4 channels x up to 1024 positions (4096 elements, 32 per thread at 4 warps).
BLOCK_D = 4
MAX_BLOCK_L = 1024
# The backward holds more per element (dx, gz, the recomputed z): 8 warps keep it in registers (4 spill).
BWD_WARPS = 8


@triton.jit
def _load_tile(ptr, row, offs_d_mask, src, L):
    """x[row, src] for a (BLOCK_D,) row offset and a (BLOCK_L,) position vector, 0 outside [0, L)."""
    mask = offs_d_mask[:, None] & ((src >= 0) & (src < L))[None, :]  # (BLOCK_D, BLOCK_L)
    return tl.load(ptr + row[:, None] + src[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _preact(x_ptr, w_ptr, b_ptr, row, offs_d, mask_d, pos, L, W: tl.constexpr, HAS_BIAS: tl.constexpr):
    """z at positions ``pos`` (BLOCK_L,) of rows ``row`` (BLOCK_D,): the convolution plus bias, float32."""
    z = tl.zeros((row.shape[0], pos.shape[0]), dtype=tl.float32)  # (BLOCK_D, BLOCK_L)
    if HAS_BIAS:
        z += tl.load(b_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)[:, None]
    for j in tl.static_range(W):
        w_j = tl.load(w_ptr + offs_d * W + j, mask=mask_d, other=0.0).to(tl.float32)  # (BLOCK_D,)
        z += w_j[:, None] * _load_tile(x_ptr, row, mask_d, pos - (W - 1 - j), L)
    return z


@triton.jit
def _short_conv_fwd_kernel(
    x_ptr,  # (B, D, L) contiguous
    w_ptr,  # (D, W) contiguous
    b_ptr,  # (D,) or a dummy when HAS_BIAS is False
    y_ptr,  # (B, D, L) contiguous, x's dtype
    D,
    L,
    W: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SILU: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_L: tl.constexpr,
):
    pid_l, pid_d, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)  # (BLOCK_D,) channels
    offs_t = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)  # (BLOCK_L,) positions
    mask_d = offs_d < D
    row = (b * D + offs_d).to(tl.int64) * L  # (BLOCK_D,) start of each (b, d) row; int64 for B·D·L > 2^31
    z = _preact(x_ptr, w_ptr, b_ptr, row, offs_d, mask_d, offs_t, L, W, HAS_BIAS)  # (BLOCK_D, BLOCK_L)
    if SILU:
        z = z * tl.sigmoid(z)
    mask = mask_d[:, None] & (offs_t < L)[None, :]
    tl.store(y_ptr + row[:, None] + offs_t[None, :], z.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _short_conv_bwd_kernel(
    x_ptr,  # (B, D, L)
    w_ptr,  # (D, W)
    b_ptr,  # (D,) or dummy
    gy_ptr,  # (B, D, L) gradient of y
    dx_ptr,  # (B, D, L) out, x's dtype
    dw_ptr,  # (B, n_tiles, D, W) out, float32 partial sums of this tile
    db_ptr,  # (B, n_tiles, D) out, float32 partial sums (unused without bias)
    D,
    L,
    n_tiles,
    W: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SILU: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_L: tl.constexpr,
):
    pid_l, pid_d, b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)  # (BLOCK_D,)
    offs_t = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)  # (BLOCK_L,)
    mask_d = offs_d < D
    row = (b * D + offs_d).to(tl.int64) * L  # (BLOCK_D,)

    # dx[t] = sum_j w[j]·gz[t + lag_j]: input t feeds output t + lag_j through tap j
    dx = tl.zeros((BLOCK_D, BLOCK_L), dtype=tl.float32)
    gz_own = tl.zeros((BLOCK_D, BLOCK_L), dtype=tl.float32)  # gz at this tile's own positions
    for j in tl.static_range(W):
        lag = W - 1 - j
        pos = offs_t + lag  # (BLOCK_L,) output positions reached through tap j
        gz = _load_tile(gy_ptr, row, mask_d, pos, L)  # (BLOCK_D, BLOCK_L), 0 past the end
        if SILU:
            z = _preact(x_ptr, w_ptr, b_ptr, row, offs_d, mask_d, pos, L, W, HAS_BIAS)
            sig = tl.sigmoid(z)
            gz = gz * sig * (1.0 + z * (1.0 - sig))  # silu'(z) = s·(1 + z·(1 - s))
        w_j = tl.load(w_ptr + offs_d * W + j, mask=mask_d, other=0.0).to(tl.float32)  # (BLOCK_D,)
        dx += w_j[:, None] * gz
        if lag == 0:
            gz_own = gz
    mask = mask_d[:, None] & (offs_t < L)[None, :]
    tl.store(dx_ptr + row[:, None] + offs_t[None, :], dx.to(dx_ptr.dtype.element_ty), mask=mask)

    # this tile's share of dw[d, j] = sum_t gz[t]·x[t - lag_j] and dbias[d] = sum_t gz[t]
    part = (b * n_tiles + pid_l) * D + offs_d  # (BLOCK_D,) row of the partial-sum buffers
    for j in tl.static_range(W):
        xs = _load_tile(x_ptr, row, mask_d, offs_t - (W - 1 - j), L)  # (BLOCK_D, BLOCK_L)
        tl.store(dw_ptr + part * W + j, tl.sum(gz_own * xs, axis=1), mask=mask_d)
    if HAS_BIAS:
        tl.store(db_ptr + part, tl.sum(gz_own, axis=1), mask=mask_d)


def _empty(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised buffer for a kernel to fill (NaN-filled when POISON_BUFFERS is set)."""
    if POISON_BUFFERS:
        return torch.full(shape, float("nan"), device=device, dtype=dtype)
    return torch.empty(shape, device=device, dtype=dtype)


def _check_device(kernel, *tensors: torch.Tensor | None) -> None:
    """Raise UsageError unless the tensors share one device the kernels can run on, in a supported dtype."""
    given = [t for t in tensors if t is not None]
    if any(t.dtype not in (torch.float32, torch.bfloat16, torch.float16) for t in given):
        raise UsageError("short_conv_triton: tensors must be float32, bfloat16 or float16")
    if len({t.device for t in given}) != 1:
        raise UsageError("short_conv_triton: all tensors must be on the same device")
    interpreted = type(kernel).__name__ == "InterpretedFunction"
    if given[0].device.type == "cpu" and not interpreted:
        raise UsageError(
            "short_conv_triton needs CUDA tensors; got tensors on CPU",
            hint="set TRITON_INTERPRET=1 before genolong's Triton kernels are imported to run them on CPU",
        )


def _grid(B: int, D: int, L: int) -> tuple[tuple[int, int, int], int]:
    block_l = min(MAX_BLOCK_L, max(16, triton.next_power_of_2(L)))
    return (triton.cdiv(L, block_l), triton.cdiv(D, BLOCK_D), B), block_l


@torch.library.custom_op("genolong::short_conv_fwd", mutates_args=())
def _short_conv_fwd(
    x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, activation: str
) -> torch.Tensor:
    """y (B, D, L) from x (B, D, L), w (D, W), bias (D,) or None; activation "" or "silu"."""
    B, D, L = x.shape
    W = w.shape[1]
    y = _empty(x.shape, x.device, x.dtype)  # (B, D, L)
    grid, block_l = _grid(B, D, L)
    _short_conv_fwd_kernel[grid](
        x, w, bias if bias is not None else w, y, D, L,
        W=W, HAS_BIAS=bias is not None, SILU=activation == "silu", BLOCK_D=BLOCK_D, BLOCK_L=block_l,
    )  # fmt: skip
    return y


@_short_conv_fwd.register_fake
def _(x, w, bias, activation):
    return torch.empty_like(x)


@torch.library.custom_op("genolong::short_conv_bwd", mutates_args=())
def _short_conv_bwd(
    gy: torch.Tensor, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, activation: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx (B, D, L) in x's dtype, dw (D, W) in w's dtype, dbias (D,) in w's dtype, zeros without bias)."""
    B, D, L = x.shape
    W = w.shape[1]
    grid, block_l = _grid(B, D, L)
    n_tiles = grid[0]
    dx = _empty(x.shape, x.device, x.dtype)  # (B, D, L)
    dw_part = _empty((B, n_tiles, D, W), x.device, torch.float32)  # (B, n_tiles, D, W)
    # (B, n_tiles, D) bias partial sums; without a bias the kernel never touches it
    db_part = _empty((B, n_tiles, D) if bias is not None else (1, 1, D), x.device, torch.float32)
    _short_conv_bwd_kernel[grid](
        x, w, bias if bias is not None else w, gy.contiguous(), dx, dw_part, db_part, D, L, n_tiles,
        W=W, HAS_BIAS=bias is not None, SILU=activation == "silu", BLOCK_D=BLOCK_D, BLOCK_L=block_l,
        num_warps=BWD_WARPS,
    )  # fmt: skip
    bias_dtype = bias.dtype if bias is not None else w.dtype
    db = db_part.sum((0, 1)) if bias is not None else torch.zeros(D, device=x.device)  # (D,)
    return dx, dw_part.sum((0, 1)).to(w.dtype), db.to(bias_dtype)


@_short_conv_bwd.register_fake
def _(gy, x, w, bias, activation):
    D = w.shape[0]
    bias_dtype = bias.dtype if bias is not None else w.dtype
    return torch.empty_like(x), torch.empty_like(w), w.new_empty((D,), dtype=bias_dtype)


def _setup_context(ctx, inputs, output):
    x, w, bias, activation = inputs
    ctx.save_for_backward(x, w, bias)
    ctx.activation = activation
    ctx.has_bias = bias is not None


def _backward(ctx, gy):
    x, w, bias = ctx.saved_tensors
    dx, dw, db = _short_conv_bwd(gy, x, w, bias, ctx.activation)
    return dx, dw, db if ctx.has_bias else None, None


_short_conv_fwd.register_autograd(_backward, setup_context=_setup_context)


def short_conv_triton(
    x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None, activation: str | None = None
) -> torch.Tensor:
    """Causal depthwise short convolution optionally followed by SiLU, on Triton kernels.

    x (B, D, L), w (D, W) with 1 <= W <= 8 (the layout of a left-padded depthwise nn.Conv1d weight), bias (D,)
    or None, activation None or "silu". Returns (B, D, L) in x's dtype; accumulates in float32.
    Differentiable in x, w and bias; traceable by torch.compile (custom op ``genolong::short_conv_fwd``).
    """
    if activation not in ACTIVATIONS:
        raise UsageError(f"short_conv_triton: activation must be None or 'silu', got {activation!r}")
    if x.ndim != 3 or w.ndim != 2 or w.shape[0] != x.shape[1] or not 1 <= w.shape[1] <= MAX_WIDTH:
        raise UsageError(
            f"short_conv_triton: expected x (B, D, L) and w (D, W <= {MAX_WIDTH}), "
            f"got {tuple(x.shape)} and {tuple(w.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (x.shape[1],):
        raise UsageError(f"short_conv_triton: bias has shape {tuple(bias.shape)}, expected ({x.shape[1]},)")
    _check_device(_short_conv_fwd_kernel, x, w, bias)
    bias = bias.contiguous() if bias is not None else None
    return _short_conv_fwd(x.contiguous(), w.contiguous(), bias, activation or "")
