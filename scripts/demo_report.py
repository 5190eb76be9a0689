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
        *variant_scores(out),
        *mutagenesis(out),
    ]
    print("\n".join(lines))


def variant_scores(out: Path) -> list[str]:
    """The scored alleles of the bundled VCF, most damaging (lowest log-likelihood ratio) first."""
    rows = list(csv.DictReader((out / "variant_scores.tsv").open(), delimiter="\t"))
    scored = sorted((r for r in rows if r["status"] == "scored"), key=lambda r: float(r["score"]))
    skipped = [r for r in rows if r["status"] != "scored"]
    return [
        "## Variant scores",
        "",
        "log P(alt window) - log P(ref window) in nats, mean of both strands (negative: the model finds the",
        f"alternate allele less likely). All {len(rows)} alleles: `variant_scores.tsv`, and the input VCF with",
        "GL_SCORE / GL_STATUS added: `variant_scores.vcf.gz`.",
        "",
        "| id | variant | kind | score |",
        "| --- | --- | --- | --- |",
        *[f"| {r['id']} | {r['variant']} | {r['kind']} | {float(r['score']):+.3f} |" for r in scored],
        "",
        "Not scored: " + ", ".join(f"{r['id']} ({r['status']})" for r in skipped) + ".",
        "",
    ]


def mutagenesis(out: Path) -> list[str]:
    """Where in the ISM region single-base changes cost the model most."""
    rows = list(csv.DictReader((out / "ism.tsv").open(), delimiter="\t"))
    by_position: dict[int, list[float]] = {}
    for r in rows:
        by_position.setdefault(int(r["position"]), []).append(float(r["score"]))
    means = sorted((sum(v) / len(v), p) for p, v in by_position.items())
    return [
        "## In-silico mutagenesis",
        "",
        f"Every base of MIIJ01000039.1:177,283-177,382 changed to each other base ({len(rows)} variants, "
        "`ism.tsv`); the start codon of cds167 is at 177,323-177,325.",
        "",
        "![ISM heatmap](ism.png)",
        "",
        "Positions where changes cost most (mean score over the three alternatives): "
        + ", ".join(f"{p:,} ({m:+.2f})" for m, p in means[:5]) + ".",
        "",
    ]


if __name__ == "__main__":
    main(Path(sys.argv[1]))
