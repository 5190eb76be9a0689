"""In-silico saturation mutagenesis: every base of a region changed to each of the three others, each change
scored as a variant by :class:`~genolong.pipelines.variant_effect.VariantScorer` (same methods, windows and
strand averaging), and drawn as a heatmap.

    table = saturation_mutagenesis(scorer, "chr1:1,001-1,100")   # contig, position, ref, alt, score
    plot_heatmap(table, "ism.png", title="...")

Positions whose reference base is not A, C, G or T (``N``, IUPAC codes) are not mutated; they are counted and
left blank in the heatmap. A region with no A/C/G/T base at all (empty, or all ``N``) is refused before any
scoring (:class:`~genolong.errors.InconsistentDataError`, exit 5).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pandas as pd

from genolong.errors import InconsistentDataError, UsageError
from genolong.io.alleles import Variant

log = logging.getLogger(__name__)

BASES = "ACGT"
MAX_REGION = 2000  # default longest region: 3 variants per base, each a window pair per strand


def saturation_mutagenesis(scorer: Any, region: str, *, max_length: int = MAX_REGION,
                           progress: bool = True) -> pd.DataFrame:  # fmt: skip
    """Columns contig, position (1-based), ref, alt, score, score_forward, score_reverse; 3 rows per A/C/G/T
    base of ``region`` (``chr:start-end``, 1-based inclusive, or a whole contig)."""
    from genolong.data.regions import parse_region

    span = parse_region(region, scorer.fasta.lengths)
    if span.end - span.start > max_length:
        raise UsageError(f"region {region} has {span.end - span.start:,} bases; saturation mutagenesis is limited "
                         f"to {max_length:,} (raise the limit, or split the region)")  # fmt: skip
    seq = scorer.fasta.fetch(span.contig, span.start, span.end).upper()
    _check_mutable(region, seq)
    variants = [Variant(span.contig, span.start + i, base, alt)
                for i, base in enumerate(seq) if base in BASES for alt in BASES if alt != base]  # fmt: skip
    skipped = sum(base not in BASES for base in seq)
    if skipped:
        log.warning("%d positions of %s are not A/C/G/T and were not mutated", skipped, region)
    table = scorer.score(variants, progress=progress)
    table = table.rename(columns={"pos": "position"})
    table.attrs |= {"region": region, "not_mutated": skipped, "method": scorer.method}
    return table[["contig", "position", "ref", "alt", "score", "score_forward", "score_reverse", "status"]]


def _check_mutable(region: str, seq: str) -> None:
    """InconsistentDataError when ``seq`` has no A/C/G/T base: nothing to mutate, score or draw."""
    if not seq:
        raise InconsistentDataError(f"region {region} is empty (0 bases): nothing to mutate",
                                    hint="choose a region with A/C/G/T bases")  # fmt: skip
    if not any(base in BASES for base in seq):
        letters = "".join(sorted(set(seq)))
        raise InconsistentDataError(f"region {region} has no A/C/G/T base to mutate ({len(seq):,} bases, all of "
                                    f"{letters})", hint="choose a region with A/C/G/T bases")  # fmt: skip


def plot_heatmap(table: pd.DataFrame, path: str | os.PathLike, *, title: str = "", units: str = "score") -> None:
    """A 4 x positions heatmap (rows A, C, G, T) of ``table``'s scores, diverging colours centred on 0, the
    reference base of each column marked with a dot; for more than 200 positions a panel below shows the mean
    score per position."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    positions = np.arange(table["position"].min(), table["position"].max() + 1)
    grid = np.full((4, len(positions)), np.nan)  # (4, P): the reference base's own cell stays blank
    rows = table["alt"].map(BASES.index).to_numpy()
    grid[rows, table["position"].to_numpy() - positions[0]] = table["score"].to_numpy()
    reference = table.drop_duplicates("position").set_index("position")["ref"]
    limit = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
    wide = len(positions) > 200
    fig, axes = plt.subplots(2 if wide else 1, 1, squeeze=False, sharex=True,
                             figsize=(min(max(6, len(positions) / 8), 24), 4.5 if wide else 2.8),
                             gridspec_kw={"height_ratios": [3, 1] if wide else [1]})  # fmt: skip
    ax = axes[0, 0]
    colours = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.85")  # grey: the reference base itself
    image = ax.imshow(grid, aspect="auto", cmap=colours, interpolation="nearest",
                      norm=TwoSlopeNorm(0.0, -limit or -1.0, limit or 1.0),
                      extent=(positions[0] - 0.5, positions[-1] + 0.5, 3.5, -0.5))  # fmt: skip
    marked = [(p, BASES.index(b)) for p, b in reference.items() if b in BASES]
    if marked and len(positions) <= 400:
        ax.scatter(*zip(*marked, strict=True), s=6, c="black", marker="o", label="reference base")
        ax.legend(loc="upper right", fontsize=7, frameon=False, bbox_to_anchor=(1.0, 1.25))
    ax.set_yticks(range(4), list(BASES))
    ax.set_ylabel("alternate base")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=axes[:, 0], label=units, fraction=0.03, pad=0.01)
    if wide:
        mean = np.nanmean(grid, axis=0)
        axes[1, 0].plot(positions, mean, lw=0.8, color="black")
        axes[1, 0].axhline(0, lw=0.5, color="grey")
        axes[1, 0].set_ylabel("mean")
    axes[-1, 0].set_xlabel(f"position on {table['contig'].iloc[0]} (1-based)")
    axes[-1, 0].ticklabel_format(axis="x", style="plain", useOffset=False)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
