"""What the data module changes quietly is said: evaluation tiles skipped for N, short regions, small steps."""

from __future__ import annotations

import logging
import random

from genolong.data.datamodule import GenomeDataModule


def genome(tmp_path, n_from: int = 0, n_to: int = 0):
    rng = random.Random(0)
    bases = [rng.choice("ACGT") for _ in range(4000)]
    bases[n_from:n_to] = "N" * (n_to - n_from)
    fasta = tmp_path / "g.fa"
    fasta.write_text(">g\n" + "\n".join("".join(bases[i : i + 60]) for i in range(0, 4000, 60)) + "\n")
    return fasta


def test_validation_tiles_skipped_for_n_are_reported(tmp_path, caplog):
    fasta = genome(tmp_path, 1000, 2024)  # four 256-base validation tiles; the region's last 24 bases stay
    data = GenomeDataModule(str(fasta), train_regions=["g:1-999"], val_regions=["g:1001-2048"],
                            stages=[[256, 0]], tokens_per_step=512)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="genolong.data.datamodule"):
        tiles = data.val_dataloader().dataset
    assert len(tiles) == 1 and tiles.skipped["n_fraction"] == 4
    assert "validation: 4 of 5 windows of 256 bases skipped" in caplog.text


def test_short_regions_and_steps_below_one_window_are_reported(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="genolong.data"):
        data = GenomeDataModule(str(genome(tmp_path)), train_regions=["g:1-100", "g:201-4000"],
                                val_regions=["g:1001-2048"], stages=[[256, 0]], tokens_per_step=100)  # fmt: skip
        data.train_dataloader()
    assert "tokens_per_step 100 is less than one window of 256 bases" in caplog.text
    assert "1 of 2 regions are shorter than the 256-base window (e.g. g:1-100)" in caplog.text


def test_validation_regions_overlapping_training_are_reported(tmp_path, caplog):
    fasta = str(genome(tmp_path))
    with caplog.at_level(logging.WARNING, logger="genolong.data.datamodule"):
        GenomeDataModule(fasta, train_regions=["g:1-2000"], val_regions=["g:2001-3000"],
                         stages=[[256, 0]], tokens_per_step=512).val_dataloader()  # fmt: skip
        assert "share" not in caplog.text
        GenomeDataModule(fasta, train_regions=["g:1-2000", "g:1501-2100"], val_regions=["g:2001-3000"],
                         stages=[[256, 0]], tokens_per_step=512).val_dataloader()  # fmt: skip
    assert "validation: its regions share 100 bases with the training regions" in caplog.text
