"""Zero-shot variant effects on real genes: does a model trained on a genome score protein-breaking SNVs lower?

Trains a tiny config on the E. coli contig of ``../shared/data`` before its run of N (as bench_quality.py does;
or takes ``--model``), then takes every CDS of the annotation lying wholly in the held-out part after the gap,
enumerates the SNVs of their internal codons and classifies them with translation table 11
(:mod:`genolong.pipelines.coding_effects`: synonymous / missense / nonsense; start and stop codons left out).
A seeded sample of ``--per-class`` SNVs of each class is scored with the causal log-likelihood ratio
(``VariantScorer``, centred windows, both strands). A model that learned coding sequence scores
nonsense < missense < synonymous. Reported for the score averaged over both strands and for the score on the
gene's own (coding) strand: count and mean score per class, and AUROC of synonymous (positive, expected
higher) vs nonsense and vs missense. The trained checkpoint is kept as benchmarks/results/zero_shot_FAMILY.ckpt.
Target for the tiny CPU configs: AUROC synonymous vs nonsense >= 0.75.

    python benchmarks/bench_zero_shot.py --families hybrid            # train 6 minutes, then score
    python benchmarks/bench_zero_shot.py --model runs/x/checkpoints/last.ckpt --per-class 500

Prints a table and writes benchmarks/results/zero_shot.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import GENOME, HELD_OUT, REPO, run_family  # noqa: E402

ANNOTATION = GENOME.parent / "ecoli_MIIJ01000039.cds.gff3"


def held_out_snvs(fasta: Path, per_class: int, seed: int) -> list:
    from genolong.data.regions import parse_region
    from genolong.io.fasta import Fasta
    from genolong.io.gff import cds_transcripts
    from genolong.pipelines.coding_effects import EFFECTS, coding_snvs

    with Fasta(fasta) as genome:
        span = parse_region(HELD_OUT, genome.lengths)
        genes = [t for t in cds_transcripts(ANNOTATION)
                 if all(s.contig == span.contig and span.start <= s.start and s.end <= span.end for s in t.segments)]
        snvs = [s for t in genes for s in coding_snvs(t, genome)]  # fmt: skip
    rng = random.Random(seed)
    by_class = {e: [s for s in snvs if s.effect == e] for e in EFFECTS}
    print(f"{len(genes)} held-out genes, {len(snvs):,} SNVs: "
          + ", ".join(f"{e} {len(v):,}" for e, v in by_class.items()))  # fmt: skip
    return [s for e in EFFECTS for s in rng.sample(by_class[e], min(per_class, len(by_class[e])))]


def score(model_path: Path, fasta: Path, snvs: list, window: int) -> dict:
    from genolong.pipelines.variant_effect import VariantScorer

    start = time.perf_counter()
    with VariantScorer.from_pretrained(model_path, fasta=fasta, window=window, batch_size=32) as scorer:
        table = scorer.score([s.variant for s in snvs])
    seconds = time.perf_counter() - start
    table["effect"] = [s.effect for s in snvs]
    # the gene's own strand: the model reads the codons in their coding orientation there
    table["coding_strand"] = np.where([s.strand == "-" for s in snvs], table["score_reverse"], table["score_forward"])
    result = {"window": window, "scoring_seconds": seconds, "variants_per_second": len(table) / seconds}
    for column, name in (("score", "both_strands"), ("coding_strand", "coding_strand")):
        classes = {e: table.loc[table["effect"] == e, column].to_numpy() for e in ("synonymous", "missense",
                                                                                   "nonsense")}  # fmt: skip

        result[name] = {
            "count": {e: len(v) for e, v in classes.items()},
            "mean_score": {e: float(v.mean()) for e, v in classes.items()},
            "auroc_synonymous_vs_nonsense": _auroc(classes["synonymous"], classes["nonsense"]),
            "auroc_synonymous_vs_missense": _auroc(classes["synonymous"], classes["missense"]),
            "auroc_missense_vs_nonsense": _auroc(classes["missense"], classes["nonsense"]),
        }
    return result


def _auroc(higher: np.ndarray, lower: np.ndarray) -> float:
    """AUROC of telling the class expected to score higher from the other."""
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.ones(len(higher)), np.zeros(len(lower))]
    return float(roc_auc_score(labels, np.r_[higher, lower]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["hybrid"])
    parser.add_argument("--minutes", type=float, default=6.0, help="training budget per family")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="config override")
    parser.add_argument("--model", type=Path, help="score this checkpoint or save_pretrained dir; no training")
    parser.add_argument("--per-class", type=int, default=600)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not GENOME.exists():
        sys.exit(f"needs {GENOME} (the shared development data)")
    overrides = [part for item in args.set for part in (f"--{item.split('=', 1)[0]}", item.split("=", 1)[1])]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        fasta = Path(tmp) / GENOME.name  # a copy, so the index is written beside it and not in shared/
        shutil.copy(GENOME, fasta)
        snvs = held_out_snvs(fasta, args.per_class, args.seed)
        runs = [("given", args.model, {})] if args.model else []
        for family in [] if args.model else args.families:
            trained = run_family(family, args.minutes, Path(tmp), fasta, overrides)
            kept = REPO / "benchmarks" / "results" / f"zero_shot_{family}.ckpt"  # for --model reruns
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(tmp) / family / "checkpoints" / "last.ckpt", kept)
            runs.append((family, kept, trained))
        for name, path, trained in runs:
            row = {"model": name, "bits_per_base": trained.get("bits_per_base"),
                   "train_seconds": trained.get("train_seconds"), "overrides": args.set}  # fmt: skip
            results.append(row | score(path, fasta, snvs, args.window))
    print(f"\n{'model':<8}{'bits/base':>10} {'strands':<14}{'mean score syn / mis / non':<28}"
          f"{'AUROC syn>non':>14}{'syn>mis':>9}")  # fmt: skip
    for r in results:
        bits = f"{r['bits_per_base']:.4f}" if r["bits_per_base"] else "-"
        for name in ("both_strands", "coding_strand"):
            m = r[name]
            means = " / ".join(f"{m['mean_score'][e]:+.3f}" for e in ("synonymous", "missense", "nonsense"))
            print(f"{r['model']:<8}{bits:>10} {name:<14}{means:<28}{m['auroc_synonymous_vs_nonsense']:>14.3f}"
                  f"{m['auroc_synonymous_vs_missense']:>9.3f}")  # fmt: skip
    out = REPO / "benchmarks" / "results" / "zero_shot.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
