"""Training throughput on CPU: tokens/s and peak memory of one training step per tiny preset, and how fast the
data pipeline serves windows, so data loading is shown not to be the bottleneck.

    python benchmarks/bench_training.py                      # L = 1k and 8k (64k with --long)
    python benchmarks/bench_training.py --presets tiny-hyena --lengths 1024

Each step case runs in a fresh process (peak RSS is its own). The loader figure is GenomeWindows random
windows on the bundled genome, tokenized and collated, in one process (num_workers=0): the slowest setting.
Prints a table and writes benchmarks/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRESETS = ["tiny-hyena", "tiny-mamba2", "tiny-hybrid", "tiny-xlstm"]

STEP = r"""
import json, resource, sys, time, torch
from genolong.models import GenoLongForCausalLM, get_preset
preset, length, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
model = GenoLongForCausalLM(get_preset(preset, max_position=length))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
batch = max(1, tokens // length)
ids = torch.randint(5, 9, (batch, length))
def step():
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
step()  # warm-up
times = []
for _ in range(3):
    start = time.perf_counter(); step(); times.append(time.perf_counter() - start)
best = min(times)
print(json.dumps({"preset": preset, "length": length, "batch": batch, "step_seconds": best,
                  "tokens_per_second": batch * length / best,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def loader_throughput(length: int, batches: int = 50, batch_size: int = 16) -> float:
    """Bases per second served by GenomeWindows + PadCollate in this process."""
    from genolong.data.datasets import GenomeWindows, PadCollate
    from genolong.tokenizers.factory import build_tokenizer

    tokenizer = build_tokenizer("nucleotide")
    data = GenomeWindows(REPO / "data" / "ecoli_200k.fa", tokenizer, length, samples_per_epoch=batches * batch_size,
                         reverse_complement=True)  # fmt: skip
    collate = PadCollate(tokenizer.pad_token_id)
    start = time.perf_counter()
    for b in range(batches):
        collate([data[b * batch_size + i] for i in range(batch_size)])
    return batches * batch_size * length / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--lengths", nargs="+", type=int, default=[1024, 8192])
    parser.add_argument("--long", action="store_true", help="also L = 65536")
    parser.add_argument("--tokens", type=int, default=16384, help="tokens per step")
    args = parser.parse_args()
    lengths = args.lengths + ([65536] if args.long else [])
    rows = []
    for preset in args.presets:
        for length in lengths:
            out = subprocess.run([sys.executable, "-c", STEP, preset, str(length), str(args.tokens)],
                                 capture_output=True, text=True, cwd=REPO)  # fmt: skip
            if out.returncode:
                rows.append({"preset": preset, "length": length, "error": out.stderr.strip().splitlines()[-1]})
            else:
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    loader = {length: loader_throughput(length) for length in lengths}
    print(f"\n{'preset':<13}{'L':>7}{'batch':>6}{'step s':>8}{'tokens/s':>10}{'peak GiB':>9}{'loader/model':>13}")
    for r in rows:
        if "error" in r:
            print(f"{r['preset']:<13}{r['length']:>7}  failed: {r['error']}")
            continue
        r["loader_over_model"] = loader[r["length"]] / r["tokens_per_second"]
        print(f"{r['preset']:<13}{r['length']:>7}{r['batch']:>6}{r['step_seconds']:>8.2f}{r['tokens_per_second']:>10.0f}"
              f"{r['peak_rss_gib']:>9.2f}{r['loader_over_model']:>12.0f}x")  # fmt: skip
    print("loader (1 process): " + ", ".join(f"L={k}: {v / 1e6:.1f} Mbases/s" for k, v in loader.items()))
    out_file = REPO / "benchmarks" / "results" / "training.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps({"steps": rows, "loader_bases_per_second": loader}, indent=2))
    print(f"written to {out_file}")


if __name__ == "__main__":
    main()
