"""CPU benchmark of the operators: fast PyTorch path vs reference, forward + backward, time and peak memory.

    python benchmarks/bench_ops.py           # L = 1k, 4k, 16k, 64k (fast paths); about 2-3 minutes on 2 cores
    python benchmarks/bench_ops.py --quick   # L = 1k, 4k, 16k (fast), reference at 1k only; under 30 s

Time: one forward + backward (gradients w.r.t. every input), best of ``--repeats`` for the fast paths, a
single run for the reference. The reference runs on one thread: its step-by-step loop is made of tiny ops
that gain nothing from threads, and on a shared machine OpenMP spin-waits made such runs up to 30x slower at
random. Reference runs are time-boxed: when the run predicted from the previous length (linear for the scans
and short_conv, quadratic for the direct long convolution, whose kernel is as long as the input) exceeds
``--ref-budget`` seconds, its time is extrapolated from the largest measured length and marked "~" in the
table and ``"ref_extrapolated": true`` in the JSON. Speedups are ratios within this run. OMP_WAIT_POLICY
defaults to PASSIVE here: spinning OpenMP threads made the fast paths up to 70x slower on a busy machine.

Memory: tracemalloc does not see torch's CPU allocations, so "peak MiB" is the rise of the resident
high-water mark (VmHWM, reset through /proc/self/clear_refs before each run) over the resident size just
before the run, inputs allocated. It is measured in a fresh process whose glibc serves every block >= 64 KiB
by mmap (MALLOC_MMAP_THRESHOLD_) and is trimmed before each run, so freed memory leaves the process and
each run's peak is its own; the fast paths go first. Linux only; elsewhere the column reads "-". The
reference's peak is measured only where its run is short (``--ref-memory-budget``).

Writes benchmarks/results/ops.json.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# Before torch loads OpenMP: idle threads sleep instead of spinning. With spinning (the default), two threads
# on a 2-core machine shared with other jobs ran the fast paths up to 70x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from genolong.ops import long_conv, mlstm, short_conv, ssd_scan  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ops.json"
OPS = ("long_conv", "short_conv", "ssd_scan", "mlstm")
# Shapes per op (batch 1): channels / heads / head dims a small model on CPU would use.
SHAPES = {
    "long_conv": "B=1 D=64 Lk=L",
    "short_conv": "B=1 D=64 W=4",
    "ssd_scan": "Bt=1 H=4 P=32 G=1 N=32 chunk=64",
    "mlstm": "B=1 H=2 Dk=Dv=32 chunk=64",
}
COST_EXPONENT = {"long_conv": 2.0, "short_conv": 1.0, "ssd_scan": 1.0, "mlstm": 1.0}  # of the reference in L


def make_inputs(op: str, L: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if op == "long_conv":
        return [torch.randn(1, 64, L, generator=g), torch.randn(64, L, generator=g) / L**0.5, torch.randn(64)]
    if op == "short_conv":
        return [torch.randn(1, 64, L, generator=g), torch.randn(64, 4, generator=g), torch.randn(64)]
    if op == "ssd_scan":
        H, P, G, N = 4, 32, 1, 32
        return [
            torch.randn(1, L, H, P, generator=g),
            F.softplus(torch.randn(1, L, H, generator=g) - 1.0),
            -torch.rand(H, generator=g) - 0.1,
            torch.randn(1, L, G, N, generator=g),
            torch.randn(1, L, G, N, generator=g),
            torch.randn(H, generator=g),
        ]
    H, Dk, Dv = 2, 32, 32
    return [
        torch.randn(1, H, L, Dk, generator=g),
        torch.randn(1, H, L, Dk, generator=g),
        torch.randn(1, H, L, Dv, generator=g),
        torch.randn(1, H, L, generator=g),
        torch.randn(1, H, L, generator=g) + 3.0,
    ]


def call(op: str, backend: str, inputs: list[torch.Tensor]) -> torch.Tensor:
    fn = {"long_conv": long_conv, "short_conv": short_conv, "ssd_scan": ssd_scan, "mlstm": mlstm}[op]
    return fn(*inputs, backend=backend)


def forward_backward(op: str, backend: str, inputs: list[torch.Tensor]) -> float:
    """Seconds for one forward and backward pass (gradients w.r.t. every input)."""
    leaves = [t.detach().requires_grad_(True) for t in inputs]
    start = time.perf_counter()
    y = call(op, backend, leaves)
    y.float().square().mean().backward()
    return time.perf_counter() - start


def _proc_status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    raise OSError(field)


def trim_heap() -> None:
    """Hand glibc's free heap pages back to the OS (small blocks are not mmapped), where glibc is present."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def peak_and_seconds(op: str, backend: str, L: int) -> tuple[float | None, float]:
    """One forward + backward at length L: (peak MiB above the resident size before the run, seconds)."""
    inputs = make_inputs(op, L)
    gc.collect()
    trim_heap()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the resident high-water mark
        before = _proc_status_mib("VmRSS")
    except OSError:
        before = None
    seconds = forward_backward(op, backend, inputs)
    peak = _proc_status_mib("VmHWM") - before if before is not None else None
    return peak, seconds


def time_fast(op: str, lengths: list[int], repeats: int) -> dict[int, float]:
    forward_backward(op, "torch", make_inputs(op, 64))  # load kernels
    out = {}
    for L in lengths:
        inputs = make_inputs(op, L)
        out[L] = min(forward_backward(op, "torch", inputs) for _ in range(repeats))
    return out


def one_thread(fn):
    """Run ``fn`` with torch on one thread (see the module docstring for why the reference runs that way)."""

    def wrapped(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapped


@one_thread
def time_reference(op: str, lengths: list[int], budget: float) -> dict[int, dict]:
    """Reference seconds per length, time-boxed: {L: {"seconds", "extrapolated"}}."""
    forward_backward(op, "reference", make_inputs(op, 64))
    rows: dict[int, dict] = {}
    last = None
    for L in lengths:
        if last is not None:
            predicted = rows[last]["seconds"] * (L / last) ** COST_EXPONENT[op]
            if predicted > budget:
                rows[L] = {"seconds": predicted, "extrapolated": True}
                continue
        rows[L] = {"seconds": forward_backward(op, "reference", make_inputs(op, L)), "extrapolated": False}
        last = L
    return rows


def memory_worker(ops: list[str], fast_lengths: list[int], ref_lengths: dict[str, list[int]]) -> None:
    """Print {op: {"fast": {L: MiB}, "reference": {L: MiB}}} as JSON (run with MALLOC_MMAP_THRESHOLD_ set).

    Every fast path is measured before any reference: the reference's many small blocks leave a fragmented
    heap behind that would blur the later figures.
    """
    out = {op: {"fast": {}, "reference": {}} for op in ops}
    for op in ops:
        forward_backward(op, "torch", make_inputs(op, 64))
        out[op]["fast"] = {L: peak_and_seconds(op, "torch", L)[0] for L in fast_lengths}
    for op in ops:
        out[op]["reference"] = one_thread(
            lambda op=op: {L: peak_and_seconds(op, "reference", L)[0] for L in ref_lengths[op]}
        )()
    print(json.dumps(out))


def measure_memory(ops: list[str], fast_lengths: list[int], ref_lengths: dict[str, list[int]]) -> dict:
    """Peaks from a fresh process whose glibc returns every freed block >= 64 KiB to the OS at once."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    cmd = [sys.executable, __file__, "--memory-worker", json.dumps([ops, fast_lengths, ref_lengths])]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as err:
        print(f"memory pass failed, no peaks reported: {err.stderr.strip().splitlines()[-1:]}")
        return {}
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        op: {kind: {int(L): mib for L, mib in d.items()} for kind, d in r.items()} for op, r in parsed.items()
    }


def fmt_len(L: int) -> str:
    return f"{L // 1024}k" if L % 1024 == 0 else str(L)


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--quick", action="store_true", help="smaller lengths, reference at 1k only (< 30 s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the fast paths (min is kept)")
    parser.add_argument("--ref-budget", type=float, default=25.0, help="seconds a reference run may take")
    parser.add_argument(
        "--ref-memory-budget",
        type=float,
        default=5.0,
        help="reference memory is measured up to runs this long",
    )
    parser.add_argument("--ops", default=",".join(OPS), help="comma-separated subset of " + ",".join(OPS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        memory_worker(*json.loads(args.memory_worker))
        return
    ops = args.ops.split(",")
    fast_lengths = [1024, 4096, 16384] if args.quick else [1024, 4096, 16384, 65536]
    ref_lengths = [1024, 4096, 16384]
    budget = (
        0.0 if args.quick else args.ref_budget
    )  # --quick: measure the reference at 1k, extrapolate the rest
    threads = torch.get_num_threads()
    started = time.perf_counter()

    fast_time = {op: time_fast(op, fast_lengths, args.repeats) for op in ops}
    ref = {op: time_reference(op, ref_lengths, budget) for op in ops}
    ref_mem_lengths = {
        op: [
            L for L, r in ref[op].items() if not r["extrapolated"] and r["seconds"] <= args.ref_memory_budget
        ]
        for op in ops
    }
    peaks = measure_memory(ops, fast_lengths, ref_mem_lengths)

    results = []
    for op in ops:
        for L in fast_lengths:
            r = ref[op].get(L)
            results.append(
                {
                    "op": op,
                    "shape": SHAPES[op],
                    "L": L,
                    "fast_s": fast_time[op][L],
                    "fast_peak_mib": peaks.get(op, {}).get("fast", {}).get(L),
                    "ref_s": r["seconds"] if r else None,
                    "ref_peak_mib": peaks.get(op, {}).get("reference", {}).get(L),
                    "ref_extrapolated": bool(r and r["extrapolated"]),
                    "speedup": r["seconds"] / fast_time[op][L] if r else None,
                }
            )
    print_table(results)
    meta = {
        "torch": torch.__version__,
        "fast_threads": threads,
        "reference_threads": 1,
        "cpu": platform.processor() or platform.machine(),
        "quick": args.quick,
        "ref_budget_s": budget,
        "wall_s": round(time.perf_counter() - started, 1),
        "what": "CPU forward+backward, float32; peak = VmHWM rise over VmRSS before the run, MiB",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"\nwrote {args.out} ({meta['wall_s']} s, fast paths on {threads} threads, torch {meta['torch']})")


def print_table(results: list[dict]) -> None:
    head = f"{'op':<11} {'L':>4} {'fast ms':>9} {'ref ms':>11} {'speedup':>9} {'fast MiB':>9} {'ref MiB':>8}"
    print(head)
    print("-" * len(head))
    for r in results:
        mark = "~" if r["ref_extrapolated"] else ""
        ref_ms = f"{mark}{r['ref_s'] * 1e3:.0f}" if r["ref_s"] is not None else "-"
        speed = f"{mark}{r['speedup']:.0f}x" if r["speedup"] is not None else "-"
        fmib = f"{r['fast_peak_mib']:.0f}" if r["fast_peak_mib"] is not None else "-"
        rmib = f"{r['ref_peak_mib']:.0f}" if r["ref_peak_mib"] is not None else "-"
        print(
            f"{r['op']:<11} {fmt_len(r['L']):>4} {r['fast_s'] * 1e3:>9.1f} {ref_ms:>11} {speed:>9}"
            f" {fmib:>9} {rmib:>8}"
        )
    print("~ = extrapolated from the largest measured reference length (time-boxed)")


if __name__ == "__main__":
    main()
