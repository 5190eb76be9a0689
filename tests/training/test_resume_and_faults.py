"""Long runs survive faults: exact resume after SIGTERM, non-finite policies, safe checkpoint loading."""

from __future__ import annotations

import os
import signal

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.utilities.exceptions import SIGTERMException

from genolong.data.datamodule import GenomeDataModule
from genolong.errors import NonFiniteError, UnsafeCheckpointError
from genolong.training.callbacks import InterruptCheckpoint, NonFiniteGuard
from genolong.training.checkpoints import SafeCheckpointIO, load_checkpoint_safely
from genolong.training.lm import LanguageModelModule


class RecordLosses(L.Callback):
    def __init__(self):
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


class SigtermAtStep(L.Callback):
    """Sends this process a real SIGTERM after training step ``step`` (Lightning's handler is installed then)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def make(ecoli_fasta, root, callbacks, max_steps=8, num_workers=0, **module_kw):
    L.seed_everything(0)
    module = LanguageModelModule(
        preset="tiny-hyena", model_overrides={"d_model": 32}, lr=3e-3, warmup_steps=2, **module_kw
    )
    data = GenomeDataModule(
        str(ecoli_fasta),
        train_regions=["MIIJ01000039.1:1-150000"],
        val_regions=["MIIJ01000039.1:150001-151000"],
        stages=[[64, 3], [128, 0]],
        tokens_per_step=256,
        steps_per_epoch=5,
        num_workers=num_workers,
        seed=7,
    )
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        default_root_dir=str(root),
        callbacks=callbacks,
        plugins=[SafeCheckpointIO()],
        reload_dataloaders_every_n_epochs=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        limit_val_batches=1,
        val_check_interval=None,
        check_val_every_n_epoch=100,
        num_sanity_val_steps=0,
    )
    return module, data, trainer


class CtrlCInsideStep(L.Callback):
    """Raises KeyboardInterrupt (Ctrl-C) after the loop took the batch of step ``step``, before the step runs."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("interrupt", "error", "code"),
    [(SigtermAtStep(4), SIGTERMException, 143), (CtrlCInsideStep(4), SystemExit, 130)],  # Lightning: Ctrl-C -> exit
    ids=["sigterm-between-steps", "ctrl-c-inside-a-step"],
)
def test_resume_after_an_interrupt_is_exact(ecoli_fasta, tmp_path, interrupt, error, code):
    # Uninterrupted: 8 steps over a curriculum of 3 steps at 64 bases, then 128-base windows, 5 steps per epoch.
    full_losses = RecordLosses()
    module, data, trainer = make(ecoli_fasta, tmp_path / "full", [full_losses], num_workers=1)
    trainer.fit(module, data)
    full_weights = {k: v.clone() for k, v in module.state_dict().items()}

    # Interrupted after 4 steps (mid-epoch, second curriculum stage), by a real SIGTERM between steps or by
    # Ctrl-C inside step 5 (its batch taken but not trained on), then resumed.
    first = RecordLosses()
    module, data, trainer = make(
        ecoli_fasta, tmp_path / "run", [first, interrupt, InterruptCheckpoint()], num_workers=1
    )
    with pytest.raises(error):
        trainer.fit(module, data)
    assert InterruptCheckpoint.exit_code == code
    ckpt = tmp_path / "run" / "checkpoints" / "interrupted.ckpt"
    assert ckpt.exists()

    second = RecordLosses()
    module, data, trainer = make(ecoli_fasta, tmp_path / "run", [second], num_workers=1)
    trainer.fit(module, data, ckpt_path=str(ckpt))

    assert len(first.losses) == 4 and len(first.losses) + len(second.losses) == 8
    assert first.losses + second.losses == pytest.approx(full_losses.losses, rel=0, abs=0)
    for name, value in module.state_dict().items():
        assert torch.equal(value, full_weights[name]), name


def test_resume_with_weight_averaging_is_exact(ecoli_fasta, tmp_path):
    """The tiny Hyena config averages weights (Lightning's EMAWeightAveraging): a resumed run restores both the
    trained weights and their average, and a mid-run checkpoint's state_dict (what evaluate and export load) is
    the average."""
    ema = lambda: EMAWeightAveraging(decay=0.8)  # noqa: E731
    full_losses = RecordLosses()
    module, data, trainer = make(ecoli_fasta, tmp_path / "full", [full_losses, ema()], num_workers=1)
    trainer.fit(module, data)
    full_average = {k: v.clone() for k, v in module.state_dict().items()}  # copied in at the end of training

    first = RecordLosses()
    callbacks = [first, ema(), SigtermAtStep(4), InterruptCheckpoint()]
    module, data, trainer = make(ecoli_fasta, tmp_path / "run", callbacks, num_workers=1)
    with pytest.raises(SIGTERMException):
        trainer.fit(module, data)
    ckpt = tmp_path / "run" / "checkpoints" / "interrupted.ckpt"
    saved = load_checkpoint_safely(ckpt)
    assert saved["state_dict"].keys() == saved["current_model_state"].keys()
    assert any(not torch.equal(saved["state_dict"][k], saved["current_model_state"][k]) for k in saved["state_dict"])

    second = RecordLosses()
    module, data, trainer = make(ecoli_fasta, tmp_path / "run", [second, ema()], num_workers=1)
    trainer.fit(module, data, ckpt_path=str(ckpt))
    assert first.losses + second.losses == pytest.approx(full_losses.losses, rel=0, abs=0)
    for name, value in module.state_dict().items():
        assert torch.equal(value, full_average[name]), name


class PoisonAtStep(L.Callback):
    """Makes the loss NaN at one step by poisoning a weight before the forward pass."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                pl_module.model.get_input_embeddings().weight[5, 0] = float("nan")


class InfiniteLossAtStep(L.Callback):
    """Records the weights before step ``step``, whose loss the module then makes infinite."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            self.before = {k: v.clone() for k, v in pl_module.state_dict().items()}
            pl_module.loss_scale = float("inf")


class ScaledLossModule(LanguageModelModule):
    loss_scale = 1.0

    def training_step(self, batch, batch_idx):
        return super().training_step(batch, batch_idx) * self.loss_scale


def test_nonfinite_stop_saves_last_good_weights(ecoli_fasta, tmp_path):
    _, data, trainer = make(ecoli_fasta, tmp_path, [poison := InfiniteLossAtStep(2), NonFiniteGuard("stop")])
    L.seed_everything(0)
    module = ScaledLossModule(preset="tiny-hyena", model_overrides={"d_model": 32}, lr=3e-3, warmup_steps=2)
    with pytest.raises(NonFiniteError) as error:
        trainer.fit(module, data)
    assert error.value.exit_code == 7 and "loss" in str(error.value)
    saved = load_checkpoint_safely(tmp_path / "checkpoints" / "nonfinite-last-good.ckpt")
    assert saved["global_step"] == 2
    for name, value in saved["state_dict"].items():
        assert value.isfinite().all(), name
        assert torch.equal(value, poison.before[name]), name


def test_nonfinite_skip_leaves_weights_untouched(ecoli_fasta, tmp_path):
    guard = NonFiniteGuard("skip")

    class Snapshot(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == 2:
                self.before = {k: v.clone() for k, v in pl_module.state_dict().items()}

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if hasattr(self, "before") and not hasattr(self, "after"):
                self.after = {k: v.clone() for k, v in pl_module.state_dict().items()}

    snap = Snapshot()
    module, data, trainer = make(ecoli_fasta, tmp_path, [PoisonAtStep(2), snap, guard], max_steps=3)
    trainer.fit(module, data)
    assert guard.skipped_steps == 1
    same = lambda a, b: torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)  # noqa: E731  (the poke is NaN)
    changed = [k for k in snap.before if not same(snap.before[k], snap.after[k])]
    assert changed == []  # AdamW applied nothing: no grads, so no update and no weight decay


def test_unsafe_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"state_dict": {}, "x": Payload()}, path)
    with pytest.raises(UnsafeCheckpointError) as error:
        load_checkpoint_safely(path)
    assert error.value.exit_code == 8 and "evil.ckpt" in str(error.value)
