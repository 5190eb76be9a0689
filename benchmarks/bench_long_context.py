"""One training step at a million bases on one GPU: peak memory and tokens/s of a small model of each family,
on the Triton kernels and on the PyTorch paths, side by side.

    python benchmarks/bench_long_context.py                    # L = 1,048,576; needs a CUDA GPU
    python benchmarks/bench_long_context.py --length 131072    # a shorter context
    python benchmarks/bench_long_context.py --families hyena --backends triton

Each case (family x backend) runs in a fresh process so its peak memory is its own: bf16 autocast, per-block
activation checkpointing, AdamW, one warm-up step and then the median of three timed steps. A case that runs
out of memory is reported as such, not dropped. Prints a table and writes benchmarks/results/long_context.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "long_context.json"
# Small models of each family (published shapes where one exists), with the context set per run.
FAMILIES = {
    "hyena": ("hyenadna-small", {}),
    "hybrid": ("tiny-hybrid", {"mixers": "(mamba2*3,attention)*2", "d_model": 256, "mamba2_n_heads": 8}),
    "xlstm": ("dna-xlstm-like", {}),
}

STEP = r"""
import json, statistics, sys, time, torch
from genolong.models import GenoLongForCausalLM, get_preset
preset, overrides, backend, length = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
torch.manual_seed(0)
config = get_preset(preset, **overrides, max_position=length + 2, backend=backend, gradient_checkpointing=True)
model = GenoLongForCausalLM(config).cuda().train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
ids = torch.randint(5, 9, (1, length), device="cuda")
def step():
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    return loss.item()
try:
    step()
    times = []
    for _ in range(3):
        torch.cuda.synchronize(); start = time.perf_counter(); loss = step(); torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    ms = statistics.median(times)
    out = {"step_s": ms, "tokens_per_s": length / ms, "loss": loss}
except torch.OutOfMemoryError as exc:
    out = {"error": "out of memory: " + str(exc).splitlines()[0]}
out["peak_GiB"] = torch.cuda.max_memory_allocated() / 2**30
out["params_M"] = sum(p.numel() for p in model.parameters()) / 1e6
print(json.dumps(out))
"""


def run_case(family: str, backend: str, length: int) -> dict:
    preset, overrides = FAMILIES[family]
    proc = subprocess.run(
        [sys.executable, "-c", STEP, preset, json.dumps(overrides), backend, str(length)],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    row = {"family": family, "preset": preset, "overrides": overrides, "backend": backend, "length": length}
    if proc.returncode != 0:
        return {**row, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return {**row, **json.loads(proc.stdout.strip().splitlines()[-1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=1 << 20)
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--backends", nargs="+", choices=["triton", "torch"], default=["triton", "torch"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench_long_context.py needs a CUDA GPU and none is available here; nothing was measured.",
              file=sys.stderr)  # fmt: skip
        return 2
    rows = [run_case(f, b, args.length) for f in args.families for b in args.backends]
    print(f"{'family':<8}{'backend':<8}{'params M':>9}{'step s':>9}{'tokens/s':>11}{'peak GiB':>10}  note")
    for r in rows:
        timed = "error" not in r
        step = f"{r['step_s']:>9.2f}{r['tokens_per_s']:>11,.0f}" if timed else f"{'-':>9}{'-':>11}"
        params = f"{r['params_M']:>9.1f}" if "params_M" in r else f"{'-':>9}"
        peak = f"{r['peak_GiB']:>10.1f}" if "peak_GiB" in r else f"{'-':>10}"
        print(f"{r['family']:<8}{r['backend']:<8}{params}{step}{peak}  {r.get('error', '')}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": torch.cuda.get_device_name(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
