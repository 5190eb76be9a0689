"""Evaluation tiles skipped for their N content are counted and reported, never dropped silently."""

from __future__ import annotations

import logging
import random

from genolong.data.datamodule import GenomeDataModule


def test_validation_tiles_skipped_for_n_are_reported(tmp_path, caplog):
    rng = random.Random(0)
    bases = [rng.choice("ACGT") for _ in range(4000)]
    bases[1000:2024] = "N" * 1024  # four 256-base validation tiles; the region's last 24 bases stay
    fasta = tmp_path / "g.fa"
    fasta.write_text(">g\n" + "\n".join("".join(bases[i : i + 60]) for i in range(0, 4000, 60)) + "\n")
    data = GenomeDataModule(str(fasta), train_regions=["g:1-999"], val_regions=["g:1001-2048"],
                            stages=[[256, 0]], tokens_per_step=512)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="genolong.data.datamodule"):
        tiles = data.val_dataloader().dataset
    assert len(tiles) == 1 and tiles.skipped["n_fraction"] == 4
    assert "validation: 4 of 5 windows of 256 bases skipped" in caplog.text
