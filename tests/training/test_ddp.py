"""Two-process data-parallel training on CPU (gloo): replicas see different windows yet end with equal weights."""

from __future__ import annotations

import json

import lightning as L
import torch

from genolong.data.datamodule import GenomeDataModule
from genolong.training.lm import LanguageModelModule


class CompareReplicas(L.Callback):
    """At the end of training, every rank gathers every rank's weight checksum and first-batch window starts."""

    def __init__(self, report: str):
        self.report = report  # rank 0 writes what it gathered here, for the parent process to check
        self.first_starts: list[int] | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.first_starts is None:
            self.first_starts = [int(s) for s in batch["start"]]

    def on_train_end(self, trainer, pl_module):
        checksum = torch.stack([p.detach().double().sum() for p in pl_module.parameters()]).sum()
        sums = pl_module.all_gather(checksum)  # (world,)
        starts = pl_module.all_gather(torch.tensor(self.first_starts))  # (world, batch)
        if trainer.global_rank == 0:
            report = {
                "checksums": sums.tolist(),
                "starts": starts.tolist(),
                "step": trainer.global_step,
                "batches_per_epoch": trainer.num_training_batches,
            }
            with open(self.report, "w") as fh:
                json.dump(report, fh)


def test_two_process_ddp_replicas_agree(ecoli_fasta, tmp_path):
    L.seed_everything(0)
    module = LanguageModelModule(preset="tiny-hyena", model_overrides={"d_model": 32}, warmup_steps=1)
    data = GenomeDataModule(
        str(ecoli_fasta),
        train_regions=["MIIJ01000039.1:1-150000"],
        val_regions=["MIIJ01000039.1:150001-151000"],
        length=128,
        tokens_per_step=512,
        steps_per_epoch=4,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        use_distributed_sampler=False,  # the data module's sampler splits the epoch between replicas itself
        max_steps=3,
        default_root_dir=str(tmp_path),
        callbacks=[CompareReplicas(str(tmp_path / "replicas.json"))],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, data)
    report = json.loads((tmp_path / "replicas.json").read_text())
    assert report["step"] == 3 and len(report["checksums"]) == 2
    assert report["batches_per_epoch"] == 4  # each replica keeps its 4 steps: nothing split the epoch twice
    assert report["checksums"][0] == report["checksums"][1], "replicas ended with different weights"
    assert report["starts"][0] != report["starts"][1], "both replicas trained on the same windows"
