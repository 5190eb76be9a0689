"""GPU benchmark of the Triton kernels against the torch fast paths: forward and forward+backward, bf16.

    python benchmarks/bench_triton.py                 # needs a CUDA GPU; realistic sizes, a few minutes
    python benchmarks/bench_triton.py --quick         # smaller sizes, well under a minute
    python benchmarks/bench_triton.py --ops ssd_scan  # a subset (long_conv, short_conv, ssd_scan, mlstm)
    python benchmarks/bench_triton.py --compile-only  # no GPU needed: compile every kernel for sm_90 and
                                                      # report registers, spills and tensor-core use

For each op the Triton path (``genolong.ops.<op>.triton``) and the torch path (``backend="torch"``) run on the
same inputs: first a correctness check of the Triton outputs against the torch ones, then median times from
``triton.testing.do_bench`` (CUDA events, warm-up, gradients reset between backward runs). Bandwidth is the
fewest bytes each pass must move (every input read once, every output written once; forward+backward adds
dy, the saved inputs and the gradients) over the time, and its fraction of the H100's 3.35 TB/s; for the
scans the forward's matmul FLOPs of the chunked algorithm over the time are shown as TFLOP/s. Speedups are
ratios within this run. Prints a table and writes benchmarks/results/triton.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

RESULTS = Path(__file__).resolve().parent / "results" / "triton.json"
PEAK_BYTES_PER_S = 3.35e12  # H100 SXM HBM3
OPS = ("long_conv", "short_conv", "ssd_scan", "mlstm")
BF16 = 2  # bytes per element


def shapes(quick: bool) -> dict[str, list[dict[str, int]]]:
    """Benchmark sizes per op (the realistic ones unless ``quick``). long_conv: a filter as long as the
    sequence (Lk = L), at 1 Mbp for D = 256 and 1024, and a 2.3 Mbp filter."""
    if quick:
        return {
            "long_conv": [{"B": 1, "D": 256, "L": 2**16}],
            "short_conv": {"B": 2, "D": 1024, "L": 2**15, "W": 4},
            "ssd_scan": {"Bt": 1, "L": 4096, "H": 32, "P": 64, "G": 1, "N": 128, "chunk": 64},
            "mlstm": {"B": 1, "H": 8, "L": 4096, "Dk": 128, "Dv": 128, "chunk": 64},
        }
    return {
        "long_conv": [
            {"B": 1, "D": 256, "L": 2**20},
            {"B": 1, "D": 1024, "L": 2**20},
            {"B": 1, "D": 64, "L": 2_300_000},
        ],
        "short_conv": {"B": 4, "D": 1024, "L": 2**17, "W": 4},
        "ssd_scan": {"Bt": 2, "L": 16384, "H": 32, "P": 64, "G": 1, "N": 128, "chunk": 64},
        "mlstm": {"B": 2, "H": 8, "L": 16384, "Dk": 128, "Dv": 128, "chunk": 64},
    }


def make_case(op: str, s: dict[str, int]):
    """(inputs, triton_fn, torch_fn, fwd_bytes, fwdbwd_bytes, fwd_flops) for one op at sizes ``s``."""
    from genolong.ops import mlstm, short_conv, ssd_scan

    dev, dt = "cuda", torch.bfloat16
    g = torch.Generator(device=dev).manual_seed(0)

    def randn(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, device=dev, generator=g) * scale + shift).to(dt)

    if op == "long_conv":
        from genolong.ops import long_conv
        from genolong.ops.long_conv.triton import long_conv_triton

        B, D, L = s["B"], s["D"], s["L"]
        inputs = [randn(B, D, L), randn(D, L, scale=L**-0.5), randn(D), randn(B, D, L), randn(B, D, L)]
        n = B * D * L
        return (
            inputs,
            lambda u, k, skip, pre, post: long_conv_triton(u, k, skip, pre, post),
            lambda u, k, skip, pre, post: long_conv(u, k, skip, pre_gate=pre, post_gate=post, backend="torch"),
            (4 * n + D * L) * BF16,  # read u, the two gates, k; write y
            (14 * n + 2 * D * L) * BF16,  # + z written; read dy, u, gates, z; write du, dk, both gate grads
            0,
        )
    if op == "short_conv":
        from genolong.ops.short_conv.triton import short_conv_triton

        B, D, L, W = s["B"], s["D"], s["L"], s["W"]
        inputs = [randn(B, D, L), randn(D, W, scale=0.5), randn(D)]
        n = B * D * L
        return (
            inputs,
            lambda x, w, b: short_conv_triton(x, w, b),
            lambda x, w, b: short_conv(x, w, b, backend="torch"),
            2 * n * BF16,  # read x, write y
            5 * n * BF16,  # + read x, dy; write dx
            0,
        )
    if op == "ssd_scan":
        from genolong.ops.ssd.triton import ssd_scan_triton

        Bt, L, H, P, G, N, Q = (s[k] for k in ("Bt", "L", "H", "P", "G", "N", "chunk"))
        inputs = [
            randn(Bt, L, H, P),
            F.softplus(randn(Bt, L, H, shift=-1.0).float()).to(dt),
            -(torch.rand(H, device=dev, generator=g) + 0.5),
            randn(Bt, L, G, N),
            randn(Bt, L, G, N),
            torch.randn(H, device=dev, generator=g),
        ]
        x_n, dt_n, bc_n = Bt * L * H * P, Bt * L * H, Bt * L * G * N
        fwd = (2 * x_n + dt_n + 2 * bc_n) * BF16  # read x, dt, B, C; write y
        bwd = (3 * x_n + 2 * dt_n + 4 * bc_n) * BF16  # read x, dy, dt, B, C; write dx, ddt, dB, dC
        return (
            inputs,
            lambda *a: ssd_scan_triton(*a, chunk_size=Q),
            lambda *a: ssd_scan(*a, chunk_size=Q, backend="torch"),
            fwd,
            fwd + bwd,
            2 * Bt * H * L * (Q * N + Q * P + 2 * P * N),  # CBᵀ, (CB∘mask)x, C·S_start, chunk states
        )
    if op == "mlstm":
        from genolong.ops.mlstm.triton import mlstm_triton

        B, H, L, Dk, Dv, Q = (s[k] for k in ("B", "H", "L", "Dk", "Dv", "chunk"))
        inputs = [
            randn(B, H, L, Dk),
            randn(B, H, L, Dk),
            randn(B, H, L, Dv),
            randn(B, H, L),
            randn(B, H, L, shift=3.0),
        ]
        qk_n, v_n, g_n = B * H * L * Dk, B * H * L * Dv, B * H * L
        fwd = (2 * qk_n + 2 * v_n + 2 * g_n) * BF16  # read q, k, v, i, f; write h
        bwd = (4 * qk_n + 3 * v_n + 4 * g_n) * BF16  # read q, k, v, dh, i, f; write dq, dk, dv, di, df
        return (
            inputs,
            lambda *a: mlstm_triton(*a, chunk_size=Q),
            lambda *a: mlstm(*a, chunk_size=Q, backend="torch"),
            fwd,
            fwd + bwd,
            2 * B * H * L * (Q * Dk + Q * Dv + 2 * Dv * Dk),  # qkᵀ, P·v, C·q, chunk states
        )
    raise ValueError(op)


def scaled_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return ((a - b).abs().max() / b.abs().max().clamp(min=1.0)).item()


def bench_op(op: str, s: dict[str, int], reps_ms: int) -> list[dict]:
    """Check, then time forward and forward+backward of both implementations of ``op``."""
    from triton.testing import do_bench

    inputs, fn_triton, fn_torch, fwd_bytes, fb_bytes, fwd_flops = make_case(op, s)
    leaves = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    with torch.no_grad():
        err = scaled_error(fn_triton(*inputs), fn_torch(*inputs))
    dy = torch.randn_like(fn_torch(*inputs).float()).to(inputs[0].dtype)

    rows = []
    for impl, fn in (("triton", fn_triton), ("torch", fn_torch)):

        def fwd(fn=fn):
            with torch.no_grad():
                fn(*inputs)

        def fwd_bwd(fn=fn):
            fn(*leaves).backward(dy)

        row = {"op": op, "impl": impl, "shape": s, "dtype": "bfloat16", "max_scaled_error_vs_torch": err}
        for name, f, nbytes in (("fwd", fwd, fwd_bytes), ("fwd_bwd", fwd_bwd, fb_bytes)):
            torch.cuda.synchronize()
            ms = do_bench(
                f, warmup=max(25, reps_ms // 4), rep=reps_ms, grad_to_none=leaves, return_mode="median"
            )
            row[f"{name}_ms"] = ms
            row[f"{name}_GBps"] = nbytes / (ms * 1e-3) / 1e9
            row[f"{name}_frac_peak_bw"] = nbytes / (ms * 1e-3) / PEAK_BYTES_PER_S
        row["fwd_TFLOPs"] = fwd_flops / (row["fwd_ms"] * 1e-3) / 1e12 if fwd_flops else None
        row["peak_mem_GiB"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
        rows.append(row)
    for name in ("fwd", "fwd_bwd"):
        rows[0][f"{name}_speedup_vs_torch"] = rows[1][f"{name}_ms"] / rows[0][f"{name}_ms"]
    return rows


def print_table(rows: list[dict]) -> None:
    head = f"{'op':<11}{'impl':<8}{'fwd ms':>9}{'GB/s':>8}{'%peak':>7}{'TFLOP/s':>9}"
    head += f"{'fwd+bwd ms':>12}{'GB/s':>8}{'%peak':>7}{'speedup f/fb':>15}{'err':>10}"
    print(head)
    for r in rows:
        tf = f"{r['fwd_TFLOPs']:.0f}" if r.get("fwd_TFLOPs") else "-"
        sp = (
            f"{r['fwd_speedup_vs_torch']:.2f}x/{r['fwd_bwd_speedup_vs_torch']:.2f}x"
            if r["impl"] == "triton"
            else ""
        )
        fwd = f"{r['fwd_ms']:>9.3f}{r['fwd_GBps']:>8.0f}{100 * r['fwd_frac_peak_bw']:>6.1f}%{tf:>9}"
        both = f"{r['fwd_bwd_ms']:>12.3f}{r['fwd_bwd_GBps']:>8.0f}{100 * r['fwd_bwd_frac_peak_bw']:>6.1f}%"
        print(f"{r['op']:<11}{r['impl']:<8}{fwd}{both}{sp:>15}{r['max_scaled_error_vs_torch']:>10.1e}")


# ----------------------------------------------------------------------------------------------------------
# --compile-only: compile every kernel for sm_90 (no GPU needed) and read the resource usage from the cubin


def _kernel_specs() -> list[tuple[str, object, dict, dict, int]]:
    """(name, kernel, types of the non-constexpr args, constexprs, num_warps) at the benchmark's tiles."""
    from genolong.ops.long_conv import triton as lc
    from genolong.ops.mlstm import triton as ml
    from genolong.ops.short_conv import triton as sc
    from genolong.ops.ssd import triton as ssd

    dot = {"DOT_PREC": "tf32", "UPCAST": False}
    ssd_t = {"BLOCK_Q": 64, "BLOCK_P": 64, "BLOCK_N": 64, **dot}
    ml_t = {"BLOCK_Q": 64, "BLOCK_DK": 128, "BLOCK_DV": 64, **dot}
    sc_t = {"W": 4, "HAS_BIAS": True, "BLOCK_D": sc.BLOCK_D, "BLOCK_L": sc.MAX_BLOCK_L}
    bf16_args = {"x_ptr", "w_ptr", "b_ptr", "y_ptr", "gy_ptr", "dx_ptr", "u_ptr", "v_ptr", "r_ptr", "dt_ptr"}
    bf16_args |= {"B_ptr", "C_ptr", "dy_ptr", "q_ptr", "k_ptr", "i_ptr", "f_ptr", "h_ptr", "dh_ptr"}
    bf16_args |= {"dq_ptr", "dk_ptr", "dv_ptr", "xg_ptr", "og_ptr", "aux_ptr", "out_ptr", "out2_ptr"}
    pass_ssd = {"HAS_INIT": True, "ADJOINT": True, "BLOCK_S": 1024}
    pass_ml = {**pass_ssd, "STORE_M": False}
    lc_flags = {"HAS_XG": True, "HAS_SKIP": True, "HAS_OG": True, "HAS_AUX": False, "WRITE_OUT2": True}
    lc_outer = {"BLOCK_1": lc.OUTER_BLOCK, "BLOCK_2": lc.OUTER_BLOCK, "PREC": lc.HALF_DOT_PRECISION}  # bf16 inputs
    lc_inner = {"A": 64, "B": 64, "SPECTRUM": False, "CONJ": False, "SPEC_PER_ROW": False}
    lc_inner["PREC"] = lc.HALF_DOT_PRECISION
    specs = [
        ("long_conv inner 1-lvl", lc._inner_kernel, {**lc_inner, "SINGLE": True, **lc_flags}, lc.INNER_WARPS),
        ("long_conv inner 2-lvl", lc._inner_kernel, {**lc_inner, "SINGLE": False, **lc_flags}, lc.INNER_WARPS),
        ("long_conv outer_dft", lc._outer_dft_kernel, {"HAS_XG": True, **lc_outer}, lc.OUTER_WARPS),
        ("long_conv outer_idft", lc._outer_idft_kernel, {**lc_flags, **lc_outer}, lc.OUTER_WARPS),
        ("short_conv fwd", sc._short_conv_fwd_kernel, {**sc_t, "SILU": True}, 4),
        ("short_conv bwd", sc._short_conv_bwd_kernel, {**sc_t, "SILU": True}, sc.BWD_WARPS),
        ("ssd chunk_state", ssd._ssd_chunk_state_kernel, {"ADJOINT": False, **ssd_t}, 4),
        ("ssd state_pass", ssd._ssd_state_pass_kernel, pass_ssd, 4),
        ("ssd chunk_output", ssd._ssd_chunk_output_kernel, {"HAS_D": True, **ssd_t}, 4),
        ("ssd bwd_dx", ssd._ssd_bwd_dx_kernel, {"HAS_D": True, **ssd_t}, 4),
        ("ssd bwd_dbc", ssd._ssd_bwd_dbc_kernel, ssd_t, 4),
        ("mlstm chunk_state", ml._mlstm_chunk_state_kernel, {"ADJOINT": False, **ml_t}, 4),
        ("mlstm state_pass", ml._mlstm_state_pass_kernel, pass_ml, 4),
        ("mlstm chunk_output", ml._mlstm_chunk_output_kernel, ml_t, 4),
        ("mlstm bwd_prep", ml._mlstm_bwd_prep_kernel, {"BLOCK_T": 64, "BLOCK_DV": 64}, 4),
        ("mlstm bwd_dqk", ml._mlstm_bwd_dqk_kernel, ml_t, 8),
        ("mlstm bwd_dv", ml._mlstm_bwd_dv_kernel, ml_t, 4),
    ]  # fmt: skip
    out = []
    for name, fn, consts, warps in specs:
        sig = {}
        for a in fn.arg_names:
            if a in consts:
                continue
            if a.endswith("_ptr"):
                sig[a] = "*bf16" if a in bf16_args else "*fp32"
            else:
                sig[a] = "fp32" if a in ("scale", "inv_n") else "i32"
        out.append((name, fn, sig, consts, warps))
    return out


def compile_only() -> list[dict]:
    """Compile the kernels for sm_90 through Triton's own compiler and report registers / spills / MMA."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    bin_dir = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    rows = []
    for name, fn, sig, consts, warps in _kernel_specs():
        # pointers and the sizes that are multiples of 16 at the benchmark shapes get Triton's usual hint
        div = [
            a
            for a in fn.arg_names
            if a.endswith("_ptr") or a in ("L", "D", "P", "N", "Dk", "Dv", "Q", "PN", "S")
        ]
        attrs = {(fn.arg_names.index(a),): [["tt.divisibility", 16]] for a in div if a in sig}
        full = {a: ("constexpr" if a in consts else sig[a]) for a in fn.arg_names}
        t0 = time.perf_counter()
        kernel = triton.compile(
            ASTSource(fn, full, consts, attrs),
            target=GPUTarget("cuda", 90, 32),
            options={"num_warps": warps, "num_stages": 3},
        )
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(kernel.asm["cubin"])
            f.flush()
            res = subprocess.run(
                [bin_dir / "cuobjdump", "--dump-resource-usage", f.name], capture_output=True, text=True
            )
            sass = subprocess.run(
                [bin_dir / "cuobjdump", "--dump-sass", f.name], capture_output=True, text=True
            ).stdout
        regs, stack, shared, _ = (
            int(v) for v in re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", res.stdout).groups()
        )
        mma = sorted(set(re.findall(r"\b(HGMMA\.\w+|HMMA\.\w+)", sass)))
        rows.append({
            "kernel": name, "num_warps": warps, "registers": regs, "stack_bytes": stack,
            "static_shared_bytes": shared, "spills": ("LDL" in sass or "STL" in sass), "mma": mma,
            "vector_loads": "LDG.E.128" in sass, "compile_s": time.perf_counter() - t0,
        })  # fmt: skip
    print(f"{'kernel':<20}{'warps':>6}{'regs':>6}{'stack B':>9}{'spills':>8}{'LDG.128':>9}  tensor-core ops")
    for r in rows:
        print(
            f"{r['kernel']:<20}{r['num_warps']:>6}{r['registers']:>6}{r['stack_bytes']:>9}{str(r['spills']):>8}"
            f"{str(r['vector_loads']):>9}  {' '.join(r['mma']) or '-'}"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument(
        "--rep-ms", type=int, default=300, help="timing budget per measurement (do_bench rep)"
    )
    parser.add_argument(
        "--compile-only", action="store_true", help="compile for sm_90 and report; no GPU needed"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        print(
            "bench_triton.py: unset TRITON_INTERPRET (it makes the kernels run on the CPU interpreter)",
            file=sys.stderr,
        )
        return 2
    try:
        import triton
    except ImportError:
        print("bench_triton.py: triton is not installed (pip install triton)", file=sys.stderr)
        return 2
    if args.compile_only:
        compile_only()
        return 0
    if not torch.cuda.is_available():
        print(
            "bench_triton.py needs a CUDA GPU and none is available here; nothing was measured.\n"
            "Run it on a GPU machine, or use --compile-only to compile the kernels for sm_90 and report "
            "registers, spills and tensor-core use without a GPU.",
            file=sys.stderr,
        )
        return 2

    rows = []
    for op in args.ops:
        sizes = shapes(args.quick)[op]
        for s in sizes if isinstance(sizes, list) else [sizes]:
            try:
                rows += bench_op(op, s, args.rep_ms)
            except Exception as exc:  # one case failing (e.g. out of memory) must not lose the others
                print(f"{op} {s}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                rows.append({"op": op, "shape": s, "error": f"{type(exc).__name__}: {exc}"})
            torch.cuda.empty_cache()
    print_table([r for r in rows if "error" not in r])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "quick": args.quick,
        "peak_bandwidth_bytes_per_s": PEAK_BYTES_PER_S,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
