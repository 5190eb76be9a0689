"""``genolong fit|validate|test|predict``: LightningCLI over genolong's modules, with fault handling always on.

Configs name the module and data module by class path (see ``configs/``); any field can be overridden on the
command line, e.g. ``genolong fit --config configs/hyena/tiny.yaml --data.fasta my.fa --trainer.max_steps 100``.
Metrics are written as CSV under ``trainer.default_root_dir`` unless the config names a logger. Always added: the
non-finite guard (``--nonfinite.policy stop|skip``), the interrupt checkpoint, periodic and
last checkpoints (``--checkpoint.*``), safe checkpoint loading, and per-epoch reloading of training data
(the length curriculum changes windows between epochs).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from genolong.config_files import check_config_files
from genolong.errors import UsageError
from genolong.training.callbacks import InterruptCheckpoint, NonFiniteGuard, checkpoint_dir
from genolong.training.checkpoints import SafeCheckpointIO, load_checkpoint_safely
from genolong.training.predictions import PredictionWriter

log = logging.getLogger(__name__)


class GenoLongLightningCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(NonFiniteGuard, "nonfinite")
        parser.add_lightning_class_args(InterruptCheckpoint, "interrupt")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(PredictionWriter, "predictions")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.every_n_train_steps": 200})

    def before_validate(self) -> None:
        self._say_without_checkpoint("validate")

    def before_test(self) -> None:
        self._say_without_checkpoint("test")

    def before_predict(self) -> None:
        if not hasattr(self.model, "predictions"):  # a language model: no per-sequence prediction to write
            raise UsageError("predict writes the outputs of fine-tuned sequence models (configs/finetune/)",
                             hint="for a language model use genolong evaluate, score-variants, embed or generate")
        self._say_without_checkpoint("predict")

    def _say_without_checkpoint(self, subcommand: str) -> None:
        if self.config[subcommand].get("ckpt_path") is None:
            log.warning("%s without --ckpt_path runs the model as the config builds it: newly initialised weights "
                        "(apart from any pre-trained backbone it loads), not a trained model", subcommand)

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads --ckpt_path's hyper-parameters with its own torch.load, before genolong's safe
        # loader: a truncated or foreign file must still end as genolong's one-line error (exit 4 or 8).
        subcommand = self.config.get("subcommand")
        before = self._model_arguments(subcommand)
        try:
            super()._parse_ckpt_path()
        except Exception as error:
            path = self.config[self.config.subcommand].get("ckpt_path")
            load_checkpoint_safely(path)  # raises the genolong error that says what is wrong with the file
            raise error
        after = self._model_arguments(subcommand)
        replaced = sorted(k for k in before if k in after and before[k] != after[k])
        if replaced:  # the checkpoint's hyper-parameters win over the config and the command line
            log.warning("%s: the checkpoint's model settings replace the ones given for %s",
                        self.config[subcommand].get("ckpt_path"), ", ".join(replaced))  # fmt: skip

    def _model_arguments(self, subcommand: str | None) -> dict[str, Any]:
        """The model's init arguments in the parsed config (empty without a subcommand)."""
        model = self.config[subcommand].get("model") if subcommand else None
        arguments = model.get("init_args") if model is not None else None
        return arguments.as_dict() if arguments is not None else {}

    def after_fit(self) -> None:
        # Always leave a checkpoint of the final weights, whatever the periodic checkpoint schedule.
        trainer = self.trainer
        if trainer.state.finished and not trainer.fast_dev_run:
            path = checkpoint_dir(trainer) / "last.ckpt"
            trainer.save_checkpoint(path, weights_only=False)
            log.info("final checkpoint: %s", path)

    def _instantiate_trainer(self, config: dict, callbacks: list) -> Any:
        # Metrics go to CSV under the run's folder unless the config names a logger (no TensorBoard needed).
        if config.get("logger") in (None, True):
            config["logger"] = CSVLogger(config.get("default_root_dir") or ".")
        # Checkpoints are always loaded as plain data unless the config brings its own checkpoint I/O.
        plugins = list(config.get("plugins") or [])
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            config["plugins"] = [*plugins, SafeCheckpointIO()]
        return super()._instantiate_trainer(config, callbacks)


def run_lightning_cli(args: list[str] | None = None) -> None:
    """Run ``fit|validate|test|predict ...``; ``args=None`` reads the command line.

    An interrupted run exits 143 (SIGTERM) or 130 (SIGINT) once Lightning has shut down, after
    :class:`InterruptCheckpoint` saved its checkpoint.
    """
    InterruptCheckpoint.exit_code = None
    check_config_files(sys.argv[1:] if args is None else args)
    try:
        GenoLongLightningCLI(
            args=args,
            # the data module's sampler splits each epoch between replicas itself (and resumes exactly)
            trainer_defaults={"reload_dataloaders_every_n_epochs": 1, "use_distributed_sampler": False},
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": "genolong"},
        )
    except (SIGTERMException, KeyboardInterrupt, SystemExit):
        if InterruptCheckpoint.exit_code is None:
            raise
        sys.exit(InterruptCheckpoint.exit_code)

