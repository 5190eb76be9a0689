"""Fault handling for long runs: non-finite numbers, SIGTERM/SIGINT, and the data position in checkpoints.

* ``NonFiniteGuard``: after backward, before the optimizer step, checks the loss and every gradient. Policy
  ``stop`` saves a checkpoint of the last good weights (the step has not been applied) and raises
  :class:`genolong.errors.NonFiniteError` (exit code 7); ``skip`` drops the step (gradients cleared, so AdamW
  leaves weights and moments untouched) and counts it.
* ``InterruptCheckpoint``: Lightning turns SIGTERM into an exception at the next batch boundary; on it (and on
  Ctrl-C) this saves ``interrupted.ckpt``; the CLI then exits 143 (SIGTERM) or 130 (SIGINT). Lightning writes
  checkpoints through a temporary file, so an interrupted save never destroys the previous one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from genolong.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, NonFiniteError, UsageError

log = logging.getLogger(__name__)


def checkpoint_dir(trainer: L.Trainer) -> Path:
    """Where this run's checkpoints go: the ModelCheckpoint's folder if there is one, else the root dir."""
    callback = trainer.checkpoint_callback
    folder = getattr(callback, "dirpath", None) or os.path.join(trainer.default_root_dir, "checkpoints")
    return Path(folder)


class NonFiniteGuard(L.Callback):
    """Stop (exit 7, after a checkpoint) or skip the step when the loss or a gradient is NaN/Inf."""

    def __init__(self, policy: str = "stop"):
        if policy not in ("stop", "skip"):
            raise UsageError(f"non-finite policy must be 'stop' or 'skip', got {policy!r}")
        self.policy = policy
        self.skipped_steps = 0
        self._last_loss: torch.Tensor | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._last_loss = None

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        self._last_loss = loss.detach()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        bad = [
            name
            for name, p in pl_module.named_parameters()
            if p.grad is not None and not p.grad.isfinite().all()
        ]
        loss_bad = self._last_loss is not None and not bool(self._last_loss.isfinite())
        if not bad and not loss_bad:
            return
        what = (
            "loss"
            if loss_bad
            else f"gradient of {bad[0]}" + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else "")
        )
        if self.policy == "skip":
            self.skipped_steps += 1
            optimizer.zero_grad(set_to_none=True)
            log.warning(
                "non-finite %s at step %d: step skipped (%d so far)",
                what,
                trainer.global_step,
                self.skipped_steps,
            )
            pl_module.log("train/skipped_nonfinite_steps", float(self.skipped_steps))
            return
        path = checkpoint_dir(trainer) / "nonfinite-last-good.ckpt"
        trainer.save_checkpoint(path, weights_only=False)
        raise NonFiniteError(
            f"non-finite {what} at step {trainer.global_step}; the last good weights are in {path}",
            hint="lower the learning rate, enable gradient clipping, or set the non-finite policy to 'skip'",
        )


class InterruptCheckpoint(L.Callback):
    """Save ``interrupted.ckpt`` on SIGTERM/SIGINT and remember the exit code (143/130) the CLI should use.

    The exit itself is left to the caller, after Lightning has finished its own shutdown (loggers flushed,
    workers and process groups torn down).
    """

    exit_code: int | None = None  # of the last interruption in this process; read by the CLI

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        codes = {SIGTERMException: EXIT_TERMINATED, KeyboardInterrupt: EXIT_INTERRUPTED}
        code = next((c for kind, c in codes.items() if isinstance(exception, kind)), None)
        if code is None:
            return
        path = checkpoint_dir(trainer) / "interrupted.ckpt"
        trainer.save_checkpoint(path, weights_only=False)
        log.warning("interrupted at step %d: checkpoint saved to %s", trainer.global_step, path)
        InterruptCheckpoint.exit_code = code
