"""Triton ``long_conv``: the FFT convolution as matrix multiplies (four-step Cooley–Tukey, the Monarch
decomposition), with the Hyena gates and the skip term fused into its first load and its last store.

Sizes. The circular convolution of size N = 2^p >= max(L + Lk - 1, 256) holds the causal one. N = N1·N2, where
N2 <= INNER_MAX (4096) is the FFT one program does in registers and N1 = N / N2 the outer factor (up to 1024 for
L = Lk = 2^21).

One program's FFT of size N2 = a·b (a, b in 16..64) views the length-N2 row as an (a, b) matrix M[m1, m2],
m = b·m1 + m2:
    X[j1 + a·j2] = sum_m2 F_b[j2, m2] · T2[j1, m2] · sum_m1 F_a[j1, m1] · M[m1, m2],   T2[j1, m2] = w_N2^(j1·m2)
two complex matmuls (F_a @ M, then (·) @ F_b) with an elementwise twiddle between, each four real tl.dot (two
for a real input); the inverse runs the same steps backwards with conjugate matrices. The spectrum is never put
in natural order: its product with the filter's spectrum is elementwise, so the program multiplies in its own
layout and reads the filter spectrum at the natural index f (rfft layout; Hermitian folding gives f > N/2).

When N1 > 1 the split repeats once more, n = N2·n1 + n2 and f = k1 + N1·(j1 + a·j2), through an (R, N1, N2)
complex float32 scratch (R = B·D rows):
  1. outer_dft : S[k1, n2] = sum_n1 F_N1[k1, n1] · x[N2·n1 + n2]    (tiled tl.dot, over the nonzero n1 only)
  2. inner     : per (row, k1): · T1[k1, n2] (T1 = w_N^(k1·n2)), FFT_N2, · spectrum, IFFT_N2, · conj T1
  3. outer_idft: y[n1, n2] = Re sum_k1 conj F_N1[n1, k1] · S[k1, n2] / N   (only rows holding outputs)
With N1 = 1 one kernel does all of it, input to output.

Gates, fused into the load of the input and the store of the output:
    forward:  w = u·pre,   z = conv(w, k) + skip·w,   y = z·post           (z also stored when training)
    backward: w = dy·post, dv = corr(w, k) + skip·w,  du = dv·pre, dpre = dv·u
              dk[s] = sum_b corr(dy·post, u·pre)[s],  dskip = sum (dy·post)·(u·pre),  dpost = dy·z
corr is the same pipeline with the conjugate spectrum. The spectra (of k, and per row of u·pre for dk) come from
the same kernels in "spectrum" mode: no cuFFT call anywhere.

Inputs may be float32, bfloat16 or float16; all arithmetic is float32 (tl.dot in FP32_DOT_PRECISION, or
HALF_DOT_PRECISION for bf16/fp16 inputs). Registered as torch custom ops genolong::long_conv_fwd /
long_conv_bwd (fake implementations and autograd), so torch.compile traces through them. On CPU tensors the
kernels run only under TRITON_INTERPRET=1.
"""

from functools import lru_cache

import torch
import triton
import triton.language as tl

from genolong.errors import UsageError

__all__ = ["long_conv_triton"]

INNER_MIN = 256  # smallest FFT size: 16 x 16, the smallest tl.dot tile
INNER_MAX = 4096  # largest FFT in one program's registers: 64 x 64
OUTER_BLOCK = 64  # rows of F_N1 per tl.dot step of the outer passes, and the n2 columns of their tiles
# The inner program holds about ten (64, 64) float32 tiles (DFT matrices, twiddles, the row's real and
# imaginary parts). `bench_triton.py --compile-only` (sm_90): at 64 x 64 it spills at 4, 8 or 16 warps
# (0.4-2 kB of stack); at 32 x 32 (N2 <= 1024) with TF32 it fits in registers at 8 warps. The outer passes fit
# at 8 warps with TF32, and spill ~0.3 kB with TF32x3.
INNER_WARPS = 8
OUTER_WARPS = 8
# tl.dot precision for float32 inputs: "tf32x3" (three TF32 products, float32-level accuracy on the tensor
# cores; "ieee" is exact but slow). bf16/fp16 inputs use one TF32 product (~1e-3 relative error, below their
# own rounding), which also keeps the outer passes' 64 x 64 tiles free of register spills on sm_90.
FP32_DOT_PRECISION = "tf32x3"
HALF_DOT_PRECISION = "tf32"
# Tests set this to True: every buffer the kernels must fill is then pre-filled with NaN.
POISON_BUFFERS = False
TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@triton.jit
def _cmul(ar, ai, br, bi):
    """Elementwise complex product (ar + i·ai)(br + i·bi)."""
    return ar * br - ai * bi, ar * bi + ai * br


@triton.jit
def _cdot(ar, ai, br, bi, PREC: tl.constexpr):
    """Complex matrix product (ar + i·ai) @ (br + i·bi) in float32, four real tl.dot."""
    re = tl.dot(ar, br, input_precision=PREC) - tl.dot(ai, bi, input_precision=PREC)
    im = tl.dot(ar, bi, input_precision=PREC) + tl.dot(ai, br, input_precision=PREC)
    return re, im


@triton.jit
def _load_table(ptr, rows, cols, n_rows, n_cols):
    """Real and imaginary planes of a (2, n_rows, n_cols) float32 table at [rows, cols], 0 outside it."""
    offs = rows[:, None] * n_cols + cols[None, :]
    plane = n_rows * n_cols
    mask = (rows < n_rows)[:, None] & (cols < n_cols)[None, :]
    return tl.load(ptr + offs, mask=mask, other=0.0), tl.load(ptr + plane + offs, mask=mask, other=0.0)


@triton.jit
def _load_gated(x_ptr, g_ptr, row_base, t, limit, HAS_G: tl.constexpr):
    """x[row, t]·g[row, t] in float32 (x alone without a gate), 0 where t >= limit."""
    mask = t < limit
    x = tl.load(x_ptr + row_base + t, mask=mask, other=0.0).to(tl.float32)
    if HAS_G:
        x *= tl.load(g_ptr + row_base + t, mask=mask, other=0.0).to(tl.float32)
    return x


@triton.jit
def _epilogue(
    c, r, t, x_ptr, xg_ptr, skip_ptr, og_ptr, aux_ptr, out_ptr, out2_ptr, D, L_in, T_out,
    HAS_XG: tl.constexpr, HAS_SKIP: tl.constexpr, HAS_OG: tl.constexpr, HAS_AUX: tl.constexpr,
    WRITE_OUT2: tl.constexpr,
):  # fmt: skip
    """Store out = (c + skip·w)·og at positions t < T_out of row r, and out2 = (c + skip·w)·aux (or without
    aux) when WRITE_OUT2; w is the gated input, c the convolution, both float32."""
    mask = t < T_out
    row_in = r.to(tl.int64) * L_in
    row_out = r.to(tl.int64) * T_out
    z = c
    if HAS_SKIP:
        z += tl.load(skip_ptr + r % D).to(tl.float32) * _load_gated(x_ptr, xg_ptr, row_in, t, T_out, HAS_XG)
    out = z
    if HAS_OG:
        out = z * tl.load(og_ptr + row_in + t, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + row_out + t, out, mask=mask)
    if WRITE_OUT2:
        out2 = z
        if HAS_AUX:
            out2 = z * tl.load(aux_ptr + row_in + t, mask=mask, other=0.0).to(tl.float32)
        tl.store(out2_ptr + row_out + t, out2, mask=mask)


@triton.jit
def _inner_kernel(
    x_ptr, xg_ptr, sre_ptr, sim_ptr, spec_ptr, fa_ptr, fb_ptr, t2_ptr, t1_ptr,
    skip_ptr, og_ptr, aux_ptr, out_ptr, out2_ptr,
    D, L_in, T_out, N1, N, inv_n,
    A: tl.constexpr, B: tl.constexpr, SINGLE: tl.constexpr, SPECTRUM: tl.constexpr, CONJ: tl.constexpr,
    SPEC_PER_ROW: tl.constexpr, HAS_XG: tl.constexpr, HAS_SKIP: tl.constexpr, HAS_OG: tl.constexpr,
    HAS_AUX: tl.constexpr, WRITE_OUT2: tl.constexpr, PREC: tl.constexpr,
):  # fmt: skip
    """Grid (R, N1). FFT of size A·B of row r's k1-th column (SINGLE: of the gated input itself), then either
    the spectrum written out (SPECTRUM) or its product with a spectrum, the inverse FFT and the result stored
    (SINGLE: through the epilogue; else back into the scratch)."""
    r = tl.program_id(0)
    k1 = tl.program_id(1)
    i_a = tl.arange(0, A)
    i_b = tl.arange(0, B)
    pos = i_a[:, None] * B + i_b[None, :]  # (A, B): position m = B·m1 + m2 in the row of N2 = A·B
    far, fai = _load_table(fa_ptr, i_a, i_a, A, A)  # (A, A) F_a
    fbr, fbi = _load_table(fb_ptr, i_b, i_b, B, B)  # (B, B) F_b
    t2r, t2i = _load_table(t2_ptr, i_a, i_b, A, B)  # (A, B) T2
    scratch = (r.to(tl.int64) * N1 + k1) * (A * B) + pos  # (A, B) offsets of this column in the scratch
    t1_offs = k1 * (A * B) + pos
    if SINGLE:  # the row itself, real: F_a @ M is two dots
        x = _load_gated(x_ptr, xg_ptr, r.to(tl.int64) * L_in, pos, L_in, HAS_XG)  # (A, B)
        ar = tl.dot(far, x, input_precision=PREC)
        ai = tl.dot(fai, x, input_precision=PREC)
    else:  # a column of the outer DFT, twiddled by T1[k1, ·]
        xr, xi = _cmul(
            tl.load(sre_ptr + scratch), tl.load(sim_ptr + scratch),
            tl.load(t1_ptr + t1_offs), tl.load(t1_ptr + N1 * (A * B) + t1_offs),
        )  # fmt: skip
        ar, ai = _cdot(far, fai, xr, xi, PREC)  # (A, B) [j1, m2]
    ar, ai = _cmul(ar, ai, t2r, t2i)
    xr, xi = _cdot(ar, ai, fbr, fbi, PREC)  # (A, B) spectrum at [j1, j2]
    f = k1 + N1 * (i_a[:, None] + A * i_b[None, :])  # (A, B) natural frequency index of each entry
    half = N // 2
    srow = (r if SPEC_PER_ROW else r % D).to(tl.int64) * (half + 1)
    if SPECTRUM:
        keep = f <= half
        tl.store(spec_ptr + (srow + f) * 2, xr, mask=keep)
        tl.store(spec_ptr + (srow + f) * 2 + 1, xi, mask=keep)
    else:
        lower = f <= half
        fh = tl.where(lower, f, N - f)  # the upper half is the conjugate of the lower one
        kr = tl.load(spec_ptr + (srow + fh) * 2)
        ki = tl.load(spec_ptr + (srow + fh) * 2 + 1)
        ki = tl.where(lower, ki, -ki)
        if CONJ:
            ki = -ki
        zr, zi = _cmul(xr, xi, kr, ki)
        br, bi = _cdot(zr, zi, fbr, -fbi, PREC)  # (A, B) [j1, m2]
        br, bi = _cmul(br, bi, t2r, -t2i)
        if SINGLE:  # Re(conj(F_a) @ B) / N, through the epilogue
            yr = tl.dot(far, br, input_precision=PREC) + tl.dot(fai, bi, input_precision=PREC)
            _epilogue(
                yr * inv_n, r, pos, x_ptr, xg_ptr, skip_ptr, og_ptr, aux_ptr, out_ptr, out2_ptr, D, L_in, T_out,
                HAS_XG, HAS_SKIP, HAS_OG, HAS_AUX, WRITE_OUT2,
            )  # fmt: skip
        else:
            yr, yi = _cdot(far, -fai, br, bi, PREC)  # (A, B) [m1, m2]
            yr, yi = _cmul(yr, yi, tl.load(t1_ptr + t1_offs), -tl.load(t1_ptr + N1 * (A * B) + t1_offs))
            tl.store(sre_ptr + scratch, yr)
            tl.store(sim_ptr + scratch, yi)


@triton.jit
def _outer_dft_kernel(
    x_ptr, xg_ptr, sre_ptr, sim_ptr, f1_ptr, L_in, N1, N2, n1_used,
    HAS_XG: tl.constexpr, BLOCK_1: tl.constexpr, BLOCK_2: tl.constexpr, PREC: tl.constexpr,
):  # fmt: skip
    """Grid (R, N2 / BLOCK_2, N1 / BLOCK_1): S[k1, n2] = sum_{n1 < n1_used} F_N1[k1, n1]·x[N2·n1 + n2]."""
    r = tl.program_id(0)
    n2 = tl.program_id(1) * BLOCK_2 + tl.arange(0, BLOCK_2)
    k1 = tl.program_id(2) * BLOCK_1 + tl.arange(0, BLOCK_1)
    acc_r = tl.zeros((BLOCK_1, BLOCK_2), dtype=tl.float32)
    acc_i = tl.zeros((BLOCK_1, BLOCK_2), dtype=tl.float32)
    for start in range(0, n1_used, BLOCK_1):
        n1 = start + tl.arange(0, BLOCK_1)
        fr, fi = _load_table(f1_ptr, k1, n1, N1, N1)
        x = _load_gated(x_ptr, xg_ptr, r.to(tl.int64) * L_in, n1[:, None] * N2 + n2[None, :], L_in, HAS_XG)
        acc_r += tl.dot(fr, x, input_precision=PREC)
        acc_i += tl.dot(fi, x, input_precision=PREC)
    offs = (r.to(tl.int64) * N1 + k1[:, None]) * N2 + n2[None, :]  # (BLOCK_1, BLOCK_2)
    mask = (k1 < N1)[:, None]
    tl.store(sre_ptr + offs, acc_r, mask=mask)
    tl.store(sim_ptr + offs, acc_i, mask=mask)


@triton.jit
def _outer_idft_kernel(
    sre_ptr, sim_ptr, f1_ptr, x_ptr, xg_ptr, skip_ptr, og_ptr, aux_ptr, out_ptr, out2_ptr,
    D, L_in, T_out, N1, N2, inv_n,
    HAS_XG: tl.constexpr, HAS_SKIP: tl.constexpr, HAS_OG: tl.constexpr, HAS_AUX: tl.constexpr,
    WRITE_OUT2: tl.constexpr, BLOCK_1: tl.constexpr, BLOCK_2: tl.constexpr, PREC: tl.constexpr,
):  # fmt: skip
    """Grid (R, N2 / BLOCK_2, ceil(T_out / N2) / BLOCK_1): y[N2·n1 + n2] = Re sum_k1 conj F_N1[n1, k1]·S[k1, n2]
    / N for the rows n1 that hold outputs, through the epilogue."""
    r = tl.program_id(0)
    n2 = tl.program_id(1) * BLOCK_2 + tl.arange(0, BLOCK_2)
    n1 = tl.program_id(2) * BLOCK_1 + tl.arange(0, BLOCK_1)
    acc = tl.zeros((BLOCK_1, BLOCK_2), dtype=tl.float32)
    for start in range(0, N1, BLOCK_1):
        k1 = start + tl.arange(0, BLOCK_1)
        fr, fi = _load_table(f1_ptr, n1, k1, N1, N1)
        offs = (r.to(tl.int64) * N1 + k1[:, None]) * N2 + n2[None, :]  # (BLOCK_1, BLOCK_2)
        mask = (k1 < N1)[:, None]
        sr = tl.load(sre_ptr + offs, mask=mask, other=0.0)
        si = tl.load(sim_ptr + offs, mask=mask, other=0.0)
        acc += tl.dot(fr, sr, input_precision=PREC) + tl.dot(fi, si, input_precision=PREC)
    t = n1[:, None] * N2 + n2[None, :]  # (BLOCK_1, BLOCK_2) positions
    _epilogue(
        acc * inv_n, r, t, x_ptr, xg_ptr, skip_ptr, og_ptr, aux_ptr, out_ptr, out2_ptr, D, L_in, T_out,
        HAS_XG, HAS_SKIP, HAS_OG, HAS_AUX, WRITE_OUT2,
    )  # fmt: skip


def _empty(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised buffer for a kernel to fill (NaN-filled when POISON_BUFFERS is set)."""
    if POISON_BUFFERS:
        return torch.full(shape, float("nan"), device=device, dtype=dtype)
    return torch.empty(shape, device=device, dtype=dtype)


def _roots(rows: int, cols: int, n: int, device: torch.device) -> torch.Tensor:
    """(2, rows, cols) float32: real and imaginary parts of w_n^(i·j) = exp(-2πi·(i·j mod n)/n)."""
    i = torch.arange(rows, dtype=torch.int64)[:, None]
    j = torch.arange(cols, dtype=torch.int64)[None, :]
    angle = (i * j % n).double() * (-2 * torch.pi / n)  # exact argument reduction before the cos/sin
    return torch.stack([angle.cos(), angle.sin()]).float().to(device)


class _Plan:
    """FFT size N = N1·N2 >= n_needed and the DFT tables of its factors (cached per size and device)."""

    def __init__(self, n_needed: int, device: torch.device, dtype: torch.dtype):
        self.N = max(INNER_MIN, triton.next_power_of_2(n_needed))
        self.N2 = min(self.N, INNER_MAX)
        self.N1 = self.N // self.N2
        p = self.N2.bit_length() - 1
        self.a = 1 << ((p + 1) // 2)  # a >= b, both powers of two in 16..64
        self.b = self.N2 // self.a
        self.fa, self.fb, self.t2, self.t1, self.f1 = _tables(self.N1, self.a, self.b, device)
        self.block_1 = max(16, min(OUTER_BLOCK, self.N1))
        self.prec = FP32_DOT_PRECISION if dtype == torch.float32 else HALF_DOT_PRECISION


@lru_cache(maxsize=16)
def _tables(N1: int, a: int, b: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    N2 = a * b
    fa, fb, t2 = _roots(a, a, a, device), _roots(b, b, b, device), _roots(a, b, N2, device)
    t1 = _roots(N1, N2, N1 * N2, device) if N1 > 1 else fa  # fa: an unused placeholder pointer
    f1 = _roots(N1, N1, N1, device) if N1 > 1 else fa
    return fa, fb, t2, t1, f1


def _run(
    plan: _Plan,
    x: torch.Tensor,
    x_gate: torch.Tensor | None,
    spec: torch.Tensor,
    *,
    spectrum: bool = False,
    conj: bool = False,
    spec_per_row: bool = False,
    skip: torch.Tensor | None = None,
    out_gate: torch.Tensor | None = None,
    aux: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    out2: torch.Tensor | None = None,
) -> None:
    """One pass of the pipeline over x (B, D, L_in) gated by x_gate: with ``spectrum`` write x's rfft into
    spec (B·D, N/2 + 1, 2); else convolve with spec (D or B·D rows, conjugated with ``conj``) and write the
    epilogue's outputs into out (B, D, T_out) and out2 (same shape, or None)."""
    B, D, L_in = x.shape
    R = B * D
    N1, N2 = plan.N1, plan.N2
    T_out = out.shape[-1] if out is not None else L_in
    dummy = x
    flags = dict(
        HAS_XG=x_gate is not None, HAS_SKIP=skip is not None, HAS_OG=out_gate is not None,
        HAS_AUX=aux is not None, WRITE_OUT2=out2 is not None,
    )  # fmt: skip
    epilogue_args = [skip if skip is not None else dummy, out_gate if out_gate is not None else dummy]
    epilogue_args += [aux if aux is not None else dummy, out if out is not None else dummy]
    epilogue_args += [out2 if out2 is not None else dummy]
    xg = x_gate if x_gate is not None else dummy
    if N1 > 1:
        sre = _empty((R, N1, N2), x.device)
        sim = _empty((R, N1, N2), x.device)
        grid = (R, triton.cdiv(N2, OUTER_BLOCK), triton.cdiv(N1, plan.block_1))
        _outer_dft_kernel[grid](
            x, xg, sre, sim, plan.f1, L_in, N1, N2, triton.cdiv(L_in, N2),
            HAS_XG=x_gate is not None, BLOCK_1=plan.block_1, BLOCK_2=OUTER_BLOCK, PREC=plan.prec,
            num_warps=OUTER_WARPS,
        )  # fmt: skip
    else:
        sre = sim = spec  # unused placeholders
    _inner_kernel[(R, N1)](
        x, xg, sre, sim, spec, plan.fa, plan.fb, plan.t2, plan.t1, *epilogue_args,
        D, L_in, T_out, N1, plan.N, 1.0 / plan.N,
        A=plan.a, B=plan.b, SINGLE=N1 == 1, SPECTRUM=spectrum, CONJ=conj, SPEC_PER_ROW=spec_per_row or spectrum,
        PREC=plan.prec, **flags, num_warps=INNER_WARPS,
    )  # fmt: skip
    if N1 > 1 and not spectrum:
        rows = triton.cdiv(T_out, N2)
        grid = (R, triton.cdiv(N2, OUTER_BLOCK), triton.cdiv(rows, plan.block_1))
        _outer_idft_kernel[grid](
            sre, sim, plan.f1, x, xg, *epilogue_args, D, L_in, T_out, N1, N2, 1.0 / plan.N,
            BLOCK_1=plan.block_1, BLOCK_2=OUTER_BLOCK, PREC=plan.prec, **flags, num_warps=OUTER_WARPS,
        )  # fmt: skip


def _spectrum(plan: _Plan, x: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
    """rfft of size plan.N of every row of x·gate: x (B, D, L) -> (B·D, N/2 + 1, 2) float32 (real, imag)."""
    spec = _empty((x.shape[0] * x.shape[1], plan.N // 2 + 1, 2), x.device)
    _run(plan, x, gate, spec, spectrum=True)
    return spec


def _filter_spectrum(plan: _Plan, k: torch.Tensor) -> torch.Tensor:
    """k (D, Lk) -> (D, N/2 + 1, 2): the filter's rfft."""
    return _spectrum(plan, k[None])


@torch.library.custom_op("genolong::long_conv_fwd", mutates_args=())
def _long_conv_fwd(
    u: torch.Tensor,
    k: torch.Tensor,
    skip: torch.Tensor | None,
    pre_gate: torch.Tensor | None,
    post_gate: torch.Tensor | None,
    keep_z: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y (B, D, L) in u's dtype, z = y before the post gate, (B, D, L), or an empty tensor without keep_z)."""
    plan = _Plan(u.shape[-1] + k.shape[-1] - 1, u.device, u.dtype)
    y = _empty(u.shape, u.device, u.dtype)  # (B, D, L)
    z = _empty(u.shape, u.device, u.dtype) if keep_z else u.new_empty(0)
    _run(
        plan, u, pre_gate, _filter_spectrum(plan, k),
        skip=skip, out_gate=post_gate, out=y, out2=z if keep_z else None,
    )  # fmt: skip
    return y, z


@_long_conv_fwd.register_fake
def _(u, k, skip, pre_gate, post_gate, keep_z):
    return torch.empty_like(u), torch.empty_like(u) if keep_z else u.new_empty(0)


@torch.library.custom_op("genolong::long_conv_bwd", mutates_args=())
def _long_conv_bwd(
    dy: torch.Tensor,
    u: torch.Tensor,
    k: torch.Tensor,
    skip: torch.Tensor | None,
    pre_gate: torch.Tensor | None,
    post_gate: torch.Tensor | None,
    z: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(du, dk, dskip, dpre, dpost); the last three are empty tensors where skip / a gate is absent."""
    B, D, L = u.shape
    Lk = k.shape[-1]
    plan = _Plan(L + Lk - 1, u.device, u.dtype)
    du = _empty(u.shape, u.device, u.dtype)  # (B, D, L)
    dpre = _empty(u.shape, u.device, pre_gate.dtype) if pre_gate is not None else u.new_empty(0)
    _run(
        plan, dy, post_gate, _filter_spectrum(plan, k), conj=True,
        skip=skip, out_gate=pre_gate, aux=u, out=du, out2=dpre if pre_gate is not None else None,
    )  # fmt: skip
    dk_rows = _empty((B, D, Lk), u.device)  # (B, D, Lk): each row's share of dk, float32
    _run(plan, dy, post_gate, _spectrum(plan, u, pre_gate), conj=True, spec_per_row=True, out=dk_rows)
    dk = dk_rows.sum(0).to(k.dtype)  # (D, Lk)
    dz = dy.float() if post_gate is None else dy.float() * post_gate.float()  # (B, D, L)
    dskip = u.new_empty(0)
    if skip is not None:
        v = u.float() if pre_gate is None else u.float() * pre_gate.float()  # (B, D, L)
        dskip = (dz * v).sum((0, 2)).to(skip.dtype)  # (D,)
    dpost = u.new_empty(0)
    if post_gate is not None and z.numel():  # z is kept only when the post gate needs a gradient
        dpost = (dy.float() * z.float()).to(post_gate.dtype)  # (B, D, L)
    return du, dk, dskip, dpre, dpost


@_long_conv_bwd.register_fake
def _(dy, u, k, skip, pre_gate, post_gate, z):
    def like(t):
        return torch.empty_like(t) if t is not None else u.new_empty(0)

    return torch.empty_like(u), torch.empty_like(k), like(skip), like(pre_gate), like(post_gate)


def _setup_context(ctx, inputs, output):
    u, k, skip, pre_gate, post_gate, _ = inputs
    ctx.save_for_backward(u, k, skip, pre_gate, post_gate, output[1])
    ctx.given = (skip is not None, pre_gate is not None, post_gate is not None)


def _backward(ctx, dy, _dz):
    u, k, skip, pre_gate, post_gate, z = ctx.saved_tensors
    du, dk, dskip, dpre, dpost = _long_conv_bwd(dy.contiguous(), u, k, skip, pre_gate, post_gate, z)
    has_skip, has_pre, has_post = ctx.given
    dpost = dpost if has_post and z.numel() else None
    return du, dk, dskip if has_skip else None, dpre if has_pre else None, dpost, None


_long_conv_fwd.register_autograd(_backward, setup_context=_setup_context)


def _check(u, k, skip, pre_gate, post_gate) -> None:
    given = [t for t in (u, k, skip, pre_gate, post_gate) if t is not None]
    if any(t.dtype not in TRITON_DTYPES for t in given):
        raise UsageError(
            "long_conv_triton: the kernels take float32, bfloat16 or float16 tensors, got "
            + ", ".join(sorted({str(t.dtype) for t in given}))
        )
    if len({t.device for t in given}) != 1:
        raise UsageError("long_conv_triton: all tensors must be on the same device")
    interpreted = type(_inner_kernel).__name__ == "InterpretedFunction"
    if u.device.type == "cpu" and not interpreted:
        raise UsageError(
            "long_conv_triton needs CUDA tensors; got tensors on CPU",
            hint="set TRITON_INTERPRET=1 before genolong's Triton kernels are imported to run them on CPU",
        )
    for name, gate in (("pre_gate", pre_gate), ("post_gate", post_gate)):
        if gate is not None and gate.shape != u.shape:
            raise UsageError(f"long_conv_triton: {name} has shape {tuple(gate.shape)}, expected {tuple(u.shape)}")


def long_conv_triton(
    u: torch.Tensor,
    k: torch.Tensor,
    skip: torch.Tensor | None = None,
    pre_gate: torch.Tensor | None = None,
    post_gate: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gated causal depthwise long convolution (the math of ``long_conv_reference``) on Triton kernels.

    u, pre_gate, post_gate (B, D, L), k (D, Lk) with Lk <= L, skip (D,) or None -> (B, D, L) in u's dtype.
    Differentiable in every tensor; traceable by torch.compile (custom op ``genolong::long_conv_fwd``).
    """
    _check(u, k, skip, pre_gate, post_gate)

    def contiguous(t):
        return t.contiguous() if t is not None else None

    keep_z = post_gate is not None and torch.is_grad_enabled() and post_gate.requires_grad
    y, _ = _long_conv_fwd(
        u.contiguous(), k.contiguous(), contiguous(skip), contiguous(pre_gate), contiguous(post_gate), keep_z
    )
    return y
