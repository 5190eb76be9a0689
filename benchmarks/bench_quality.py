"""Quality target of the training issue: does a tiny model learn a real genome within a CPU time budget?

Trains each tiny config on the E. coli contig of ``../shared/data`` (the part before the run of N), holds out
the part after it, and reports held-out bits per base beside the best order-k Markov model (scored on the
same bases). Prints a table and writes benchmarks/results/quality.json.

    python benchmarks/bench_quality.py                       # hyena, hybrid, xlstm; 6 minutes each
    python benchmarks/bench_quality.py --families hyena --minutes 2
    python benchmarks/bench_quality.py --families hybrid --set trainer.max_steps=1200   # any config field

Reference points from the issue, measured on a 2-core machine: best Markov 1.938 bits/base; a 12-layer
dilated gated CNN (350k parameters) 1.908 after 5 minutes. Target for the tiny Hyena config: <= 1.90.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GENOME = REPO.parent / "shared" / "data" / "ecoli_MIIJ01000039.fa"
TRAIN = "MIIJ01000039.1:1-383781"  # real sequence before the N gap
HELD_OUT = "MIIJ01000039.1:816552-869782"  # real sequence after it


def genolong(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "genolong", *args], check=True, cwd=REPO)


def run_family(family: str, minutes: float, workdir: Path, fasta: Path, overrides: list[str]) -> dict:
    run = workdir / family
    start = time.perf_counter()
    genolong(
        "fit", "--config", str(REPO / "configs" / family / "tiny.yaml"),
        "--data.fasta", str(fasta),
        "--data.train_regions", json.dumps([TRAIN]), "--data.val_regions", json.dumps([HELD_OUT]),
        "--trainer.max_time", time.strftime("00:%H:%M:%S", time.gmtime(minutes * 60)),
        "--trainer.default_root_dir", str(run), "--checkpoint.dirpath", str(run / "checkpoints"),
        "--trainer.enable_progress_bar", "false", *overrides,
    )  # fmt: skip
    train_seconds = time.perf_counter() - start
    result_file = run / "evaluation.json"
    genolong(
        "evaluate", "--model", str(run / "checkpoints" / "last.ckpt"), "--fasta", str(fasta),
        "--regions", HELD_OUT, "--train_regions", TRAIN, "--output", str(result_file),
    )  # fmt: skip
    result = json.loads(result_file.read_text())
    curve = _validation_curve(run)
    return {"family": family, "train_seconds": train_seconds, "validation_curve": curve} | result


def _validation_curve(run: Path) -> list[tuple[int, float]]:
    import csv

    rows = csv.DictReader(next(run.rglob("metrics.csv")).open())
    return [(int(r["step"]), float(r["val/bits_per_base"])) for r in rows if r.get("val/bits_per_base")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["hyena", "hybrid", "xlstm"])
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a config field, e.g. --set trainer.max_steps=1200 (repeatable)")
    args = parser.parse_args()
    overrides = [part for item in args.set for part in (f"--{item.split('=', 1)[0]}", item.split("=", 1)[1])]
    if not GENOME.exists():
        sys.exit(f"needs {GENOME} (the shared development data)")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        fasta = Path(tmp) / GENOME.name  # a copy, so the index is written beside it and not in shared/
        shutil.copy(GENOME, fasta)
        for family in args.families:
            results.append(run_family(family, args.minutes, Path(tmp), fasta, overrides) | {"overrides": args.set})
    print(f"\n{'family':<8}{'minutes':>8}{'bits/base':>11}{'Markov':>9}{'k':>3}  beats Markov")
    for r in results:
        print(
            f"{r['family']:<8}{r['train_seconds'] / 60:>8.1f}{r['bits_per_base']:>11.4f}"
            f"{r['markov_bits_per_base']:>9.4f}{r['markov_best_order']:>3}  {r['model_beats_markov']}"
        )
    out = REPO / "benchmarks" / "results" / "quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
