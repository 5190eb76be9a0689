"""Variant scoring speed on CPU: two full forward passes per variant (naive) vs prefix/state reuse.

For each tiny preset (random weights: speed does not depend on training) a set of SNVs on the bundled genome
is scored with the causal log-likelihood ratio, forward strand only, once with ``reuse_prefix=False`` (ref and
alt windows each run in full) and once with reuse (the shared prefix runs once, both suffixes from its cache),
in both window layouts. Centred windows share half the window, so reuse can at best save a quarter of the work
(2W -> 1.5W tokens, <= 1.33x); upstream windows share all but the allele (2W -> W + 2, <= 2x). Scores of the two
paths are compared too. Then, in a fresh process, one SNV is scored with a 1,048,576-base window by the tiny
Mamba2 model, the prefix and suffixes run in pieces through the recurrent state: its peak memory is reported
beside a single forward pass over 1/8 of that length, to show it stays bounded.

    python benchmarks/bench_variants.py                  # 96 SNVs, window 1024, every tiny preset, + 1 Mbp
    python benchmarks/bench_variants.py --variants 32 --skip-long

Prints tables and writes benchmarks/results/variants.json.
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
FASTA = REPO / "data" / "ecoli_200k.fa"

LONG_CHILD = r"""
import json, resource, sys, tempfile, time, torch
from pathlib import Path
from genolong.io.fasta import Fasta
from genolong.io.alleles import Variant
from genolong.models import GenoLongForCausalLM, get_preset
from genolong.pipelines.variant_effect import VariantScorer
from genolong.tokenizers.factory import build_tokenizer, model_config_fields
window, mode = int(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
tokenizer = build_tokenizer("nucleotide")
model = GenoLongForCausalLM(get_preset("tiny-mamba2", max_position=window, **model_config_fields(tokenizer))).eval()
with Fasta(sys.argv[3]) as bundled:
    genome = bundled.fetch("MIIJ01000039.1", 0, 200_000).upper() * (window // 200_000 + 2)
reference = Path(tempfile.mkdtemp()) / "repeated.fa"  # the bundled contig repeated past the window's length
reference.write_text(">repeated\n" + "\n".join(genome[i : i + 80] for i in range(0, len(genome), 80)) + "\n")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if mode == "forward":  # one plain forward pass over the whole window: the unbounded baseline
    with torch.no_grad():
        model(input_ids=torch.as_tensor(tokenizer.encode(genome[:window]), dtype=torch.long)[None])
else:
    pos = len(genome) // 2
    variant = Variant("repeated", pos, genome[pos], "A" if genome[pos] != "A" else "C")
    with VariantScorer(model, tokenizer, reference, window=window, rc_average=False, batch_size=1) as scorer:
        table = scorer.score([variant], progress=False)
    assert table["status"][0] == "scored" and table["score"].notna().all()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"mode": mode, "window": window, "seconds": seconds, "peak_rss_gib": peak / 2**20,
                  "added_gib": (peak - base) / 2**20}))
"""


def snvs(count: int, window: int) -> list:
    from genolong.io.alleles import Variant
    from genolong.io.fasta import Fasta

    with Fasta(FASTA) as fasta:
        contig = next(iter(fasta.lengths))
        step = (fasta.lengths[contig] - 2 * window) // count
        out = []
        for i in range(count):
            pos = window + i * step
            base = fasta.fetch(contig, pos, pos + 1).upper()
            out.append(Variant(contig, pos, base, "A" if base != "A" else "G"))
    return out


def time_scoring(preset: str, variants: list, window: int, mode: str, batch: int) -> dict:
    import numpy as np
    import torch

    from genolong.models import GenoLongForCausalLM, get_preset
    from genolong.pipelines.variant_effect import VariantScorer
    from genolong.tokenizers.factory import build_tokenizer, model_config_fields

    torch.manual_seed(0)
    tokenizer = build_tokenizer("nucleotide")
    model = GenoLongForCausalLM(get_preset(preset, max_position=window, **model_config_fields(tokenizer))).eval()
    row = {"preset": preset, "window_mode": mode, "window": window, "variants": len(variants)}
    scores = {}
    with VariantScorer(model, tokenizer, FASTA, window=window, window_mode=mode, rc_average=False,
                       batch_size=batch) as scorer:  # fmt: skip
        scorer.score(variants[:batch], progress=False)  # warm-up
        for reuse in (False, True):
            scorer.run.reuse_prefix = reuse
            start = time.perf_counter()
            scores[reuse] = scorer.score(variants, progress=False)["score"].to_numpy()
            row["reuse" if reuse else "naive"] = len(variants) / (time.perf_counter() - start)
    row["speedup"] = row["reuse"] / row["naive"]
    row["max_score_difference"] = float(np.abs(scores[True] - scores[False]).max())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=96)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--long-window", type=int, default=1_048_576)
    parser.add_argument("--skip-long", action="store_true")
    args = parser.parse_args()

    variants = snvs(args.variants, args.window)
    rows = [time_scoring(p, variants, args.window, mode, args.batch_size)
            for p in args.presets for mode in ("centered", "upstream")]  # fmt: skip
    print(f"\n{'preset':<13}{'windows':<10}{'naive var/s':>12}{'reuse var/s':>12}{'speed-up':>10}{'max |diff|':>12}")
    for r in rows:
        print(f"{r['preset']:<13}{r['window_mode']:<10}{r['naive']:>12.1f}{r['reuse']:>12.1f}"
              f"{r['speedup']:>9.2f}x{r['max_score_difference']:>12.2e}")  # fmt: skip

    long_rows = []
    if not args.skip_long:
        for mode, window in (("forward", args.long_window // 8), ("score", args.long_window)):
            out = subprocess.run([sys.executable, "-c", LONG_CHILD, str(window), mode, str(FASTA)],
                                 capture_output=True, text=True, cwd=REPO)  # fmt: skip
            if out.returncode != 0:
                long_rows.append({"mode": mode, "window": window, "error": out.stderr.strip().splitlines()[-1]})
                continue
            long_rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"\n{'tiny-mamba2':<28}{'window':>10}{'seconds':>9}{'added GiB':>11}")
        for r in long_rows:
            what = "one forward pass" if r["mode"] == "forward" else "SNV score, pieces + state"
            if "error" in r:
                print(f"{what:<28}{r['window']:>10}  failed: {r['error']}")
            else:
                print(f"{what:<28}{r['window']:>10}{r['seconds']:>9.1f}{r['added_gib']:>11.2f}")

    out_file = REPO / "benchmarks" / "results" / "variants.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps({"speed": rows, "long_window": long_rows}, indent=2))
    print(f"written to {out_file}")


if __name__ == "__main__":
    main()
