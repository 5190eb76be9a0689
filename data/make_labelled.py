"""Rebuild the bundled fine-tuning examples from the bundled genome and its CDS annotation (deterministic).

    python data/make_labelled.py

- ``ecoli_200k.labels.bed``: 200-base windows of MIIJ01000039.1 starting every 50 bases, the name column
  ``coding`` when the window lies wholly inside annotated CDS and ``noncoding`` when it overlaps none (windows
  partly coding are not used): every non-coding window (177) and as many coding ones drawn with seed 0, sorted.
- ``ecoli_200k.labels.tsv``: 400 regions of 300 bases (seed 1) with their ``coding_fraction``: the share of
  their bases inside an annotated CDS (a regression target); columns region (1-based, inclusive), coding_fraction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONTIG, LENGTH = "MIIJ01000039.1", 200_000


def coding_mask() -> np.ndarray:
    mask = np.zeros(LENGTH, dtype=bool)
    for line in (HERE / "ecoli_200k.cds.gff3").read_text().splitlines():
        cols = line.split("\t")
        if len(cols) == 9 and cols[2] == "CDS":
            mask[int(cols[3]) - 1 : int(cols[4])] = True
    return mask


def main() -> None:
    coding = coding_mask()
    inside = np.concatenate([[0], np.cumsum(coding)])  # inside[e] - inside[s]: coding bases in [s, e)
    rng = np.random.default_rng(0)
    starts = rng.permutation(np.arange(0, LENGTH - 200, 50))
    counts = inside[starts + 200] - inside[starts]
    coding_starts, noncoding_starts = starts[counts == 200], starts[counts == 0]
    n = min(len(coding_starts), len(noncoding_starts))  # balanced classes
    chosen = [(s, "coding") for s in coding_starts[:n]] + [(s, "noncoding") for s in noncoding_starts[:n]]
    with open(HERE / "ecoli_200k.labels.bed", "w") as fh:
        for start, label in sorted(chosen):
            fh.write(f"{CONTIG}\t{start}\t{start + 200}\t{label}\n")
    starts = np.sort(np.random.default_rng(1).choice(np.arange(0, LENGTH - 300), 400, replace=False))
    with open(HERE / "ecoli_200k.labels.tsv", "w") as fh:
        fh.write("region\tcoding_fraction\n")
        for start in starts:
            fraction = (inside[start + 300] - inside[start]) / 300
            fh.write(f"{CONTIG}:{start + 1}-{start + 300}\t{fraction:.4f}\n")


if __name__ == "__main__":
    main()
