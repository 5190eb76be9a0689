"""Write the demo's Markdown report from the files the demo produced (argument: the demo's output folder)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def main(out: Path) -> None:
    evaluation = json.loads((out / "evaluation.json").read_text())
    variants = json.loads((out / "variants.json").read_text())
    metrics = list(csv.DictReader((out / "run").rglob("metrics.csv").__next__().open()))
    val = [(int(r["step"]), float(r["val/bits_per_base"])) for r in metrics if r.get("val/bits_per_base")]
    lines = [
        "# genolong demo report",
        "",
        "Tiny Hyena causal language model trained on *E. coli* MIIJ01000039.1 bases 1-170,000 and evaluated on",
        "the held-out bases 170,001-200,000 (data/README.md gives the provenance).",
        "",
        "## Held-out bits per base",
        "",
        "| model | bits/base |",
        "| --- | --- |",
        f"| genolong tiny Hyena | {evaluation['bits_per_base']:.4f} |",
        f"| best order-k Markov (k={evaluation['markov_best_order']}) | {evaluation['markov_bits_per_base']:.4f} |",
        "| uniform | 2.0000 |",
        "",
        f"{evaluation['bases_scored']:,} bases scored; windows of {evaluation['window_length']} advanced by "
        f"{evaluation['stride']}.",
        "",
        "## Validation during training",
        "",
        "| step | val bits/base |",
        "| --- | --- |",
        *[f"| {step} | {bits:.4f} |" for step, bits in val],
        "",
        "## Bundled variants",
        "",
        f"{variants['records']} records, {variants['alleles']} alleles: {variants['variants']} usable variants; "
        "skipped: " + ", ".join(f"{k} {v}" for k, v in variants["skipped"].items() if v) + ".",
        "",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
