"""Forward pass of each tiny preset at L = 131,072 on CPU: time and peak memory against a stated budget.

Each case runs in a fresh process so its peak resident memory (ru_maxrss) belongs to it alone; the memory
reported is that peak minus the process's memory just before the forward pass (model built, input made).
Prints a table and writes benchmarks/results/models.json.

    python benchmarks/bench_models.py                 # L = 131072, batch 1, no grad
    python benchmarks/bench_models.py --length 16384  # quicker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRESETS = ["tiny-hyena", "tiny-mamba2", "tiny-hybrid", "tiny-xlstm"]
BUDGET_GIB = 4.0  # stated budget for one 131 kbp forward pass of a tiny preset on CPU

CHILD = r"""
import json, resource, sys, time, torch
from genolong.models import GenoLongForCausalLM, get_preset
preset, length = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
model = GenoLongForCausalLM(get_preset(preset, max_position=length)).eval()
ids = torch.randint(5, 9, (1, length))
with torch.no_grad():
    model(input_ids=ids[:, :1024])  # warm-up at a small length
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    logits = model(input_ids=ids).logits
    seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"preset": preset, "length": length, "seconds": seconds, "finite": bool(logits.isfinite().all()),
                  "parameters": sum(p.numel() for p in model.parameters()),
                  "peak_rss_gib": peak / 2**20, "forward_gib": (peak - before) / 2**20}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=131_072)
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    args = parser.parse_args()
    results = []
    for preset in args.presets:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, preset, str(args.length)], capture_output=True, text=True, cwd=REPO
        )
        if out.returncode != 0:
            results.append(
                {"preset": preset, "length": args.length, "error": out.stderr.strip().splitlines()[-1]}
            )
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["within_budget"] = row["forward_gib"] <= BUDGET_GIB
        results.append(row)
    print(
        f"\n{'preset':<13}{'L':>8}{'params':>9}{'seconds':>9}{'fwd GiB':>9}{'peak GiB':>9}  budget {BUDGET_GIB} GiB"
    )
    for r in results:
        if "error" in r:
            print(f"{r['preset']:<13}{r['length']:>8}  failed: {r['error']}")
            continue
        print(
            f"{r['preset']:<13}{r['length']:>8}{r['parameters']:>9}{r['seconds']:>9.2f}{r['forward_gib']:>9.2f}"
            f"{r['peak_rss_gib']:>9.2f}  {'ok' if r['within_budget'] else 'OVER'}"
        )
    out_file = REPO / "benchmarks" / "results" / "models.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps({"budget_gib": BUDGET_GIB, "results": results}, indent=2))
    print(f"written to {out_file}")


if __name__ == "__main__":
    main()
