"""``genolong fit|validate|test|predict``: LightningCLI over genolong's modules, with fault handling always on.

Configs name the module and data module by class path (see ``configs/``); any field can be overridden on the
command line, e.g. ``genolong fit --config configs/hyena/tiny.yaml --data.fasta my.fa --trainer.max_steps 100``.
Always added: the non-finite guard (``--nonfinite.policy stop|skip``), the interrupt checkpoint, periodic and
last checkpoints (``--checkpoint.*``), safe checkpoint loading, and per-epoch reloading of training data
(the length curriculum changes windows between epochs).
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from genolong.training.callbacks import InterruptCheckpoint, NonFiniteGuard
from genolong.training.checkpoints import SafeCheckpointIO

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


class GenoLongLightningCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(NonFiniteGuard, "nonfinite")
        parser.add_lightning_class_args(InterruptCheckpoint, "interrupt")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.every_n_train_steps": 200})


def run_lightning_cli(args: list[str]) -> None:
    GenoLongLightningCLI(
        args=args,
        trainer_defaults={"reload_dataloaders_every_n_epochs": 1, "plugins": [SafeCheckpointIO()]},
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "genolong"},
    )
