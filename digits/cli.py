"""Step 3, training: the ``LightningCLI`` that every entry point shares.

It sets the trainer defaults once (TensorBoard logger, best and last checkpoints, a
fixed seed, the tutorial's 50 epochs), links the data module's shape into the model so
that it is never typed twice, and checks everything a user gives it (values, the
checkpoint, the GPU) before anything is written, so that ``digits.errors`` can turn a
mistake into one line.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace, lazy_instance
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, TQDMProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import CheckpointIO

from digits.callbacks import EpochScalarsInCheckpoint, HParamsMetrics, InterruptCheckpoint
from digits.checkpoints import LatestBestCheckpoint, SafeCheckpointIO, read_checkpoint
from digits.data import DigitsDataModule
from digits.model import DigitsClassifier
from digits.pictures import TensorBoardPictures
from digits.resume import (
    ResumableSaveConfig,
    adopt_checkpoint_settings,
    check_state_dict,
    run_folder,
)

DEFAULT_SEED = 0  # recorded in every run's config.yaml as seed_everything
LOG_DIR = "lightning_logs"
PROGRESS_BAR_REFRESH_RATE = 10  # steps between redraws: about once per epoch by default

TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 50,  # the tutorial's training length
    # Metrics are logged once per epoch, so there is nothing to log per step; 1 also
    # avoids Lightning's warning that an epoch (about 10 batches) is shorter than the
    # logging interval.
    "log_every_n_steps": 1,
    # default_hp_metric=False: HParamsMetrics declares the real metrics instead.
    "logger": lazy_instance(
        TensorBoardLogger, save_dir=LOG_DIR, name="digits", default_hp_metric=False
    ),
}

CHECKPOINT_DEFAULTS: dict[str, Any] = {
    # The best epoch by validation accuracy, which `digits.fit` tests.
    "checkpoint.monitor": "val/acc",
    "checkpoint.mode": "max",
    # No "/" from the metric name in the file name: it would make a sub-folder.
    "checkpoint.filename": "epoch{epoch:03d}-val_acc{val/acc:.4f}",
    "checkpoint.auto_insert_metric_name": False,
    # The end of every epoch, to resume from. A second callback because Lightning's
    # save_last only copies the monitored checkpoint when that one improves.
    "last_checkpoint.filename": "last",
    "last_checkpoint.monitor": None,
    "last_checkpoint.save_top_k": 1,
}

# The data is a few hundred kilobytes in memory and a batch is one indexing operation:
# worker processes would only add start-up and inter-process copies. Lightning cannot
# know that and suggests workers on machines with more than two cores.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
# "Seed set to 0" would come before any error about the values: the seed is in every
# run's config.yaml, and an error should be the only line.
logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)


class WithoutCloudLoggingTip(logging.Filter):
    """Drops Lightning's tip to install a cloud logging service.

    Lightning 2.6 prints it on every run that has no LitLogger; it says nothing about
    this run. Its other lines (which GPU was found, which checkpoint was restored) stay.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip: For seamless cloud logging" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(WithoutCloudLoggingTip())
# Lightning 2.6 still uses torch's LeafSpec, which torch 2.13 deprecates; harmless, and
# nothing a user of this project can change.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


class DigitsCLI(LightningCLI):
    """LightningCLI with this project's defaults, links and checks.

    ``run=False`` (``python -m digits.fit``) adds ``--ckpt_path`` to resume from; the
    subcommands of ``python -m digits`` have it already.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # run=False is python -m digits.fit, which runs fit and test itself.
        self.is_fit_script = not kwargs.get("run", True)
        self.checkpoint: dict[str, Any] | None = None
        kwargs.setdefault("model_class", DigitsClassifier)
        kwargs.setdefault("datamodule_class", DigitsDataModule)
        kwargs.setdefault("seed_everything_default", DEFAULT_SEED)
        callbacks = [
            HParamsMetrics(),
            TensorBoardPictures(),
            InterruptCheckpoint(),
            EpochScalarsInCheckpoint(),
        ]
        kwargs.setdefault("trainer_defaults", {"callbacks": callbacks})
        kwargs.setdefault("save_config_callback", ResumableSaveConfig)
        # Raise instead of printing a usage block, so that main() prints one line.
        kwargs.setdefault("parser_kwargs", {"exit_on_error": False})
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(LatestBestCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.set_defaults(CHECKPOINT_DEFAULTS)
        parser.set_defaults({f"trainer.{key}": value for key, value in TRAINER_DEFAULTS.items()})
        parser.link_arguments("data.num_features", "model.num_features", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        if self.is_fit_script:
            parser.add_argument(
                "--ckpt_path",
                type=str | None,
                default=None,
                help="Resume training from this checkpoint, usually a run's last.ckpt.",
            )

    @property
    def stage_config(self) -> Any:
        """The parsed config of the subcommand being run (or the whole one for fit.py)."""
        subcommand = self.config.get("subcommand")
        return self.config[subcommand] if subcommand else self.config

    @property
    def fitting(self) -> bool:
        return self.is_fit_script or self.config.get("subcommand") == "fit"

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        # Lightning reads the checkpoint right after this, before any other hook: check
        # it here, so that a bad one is a one-line error and not a traceback.
        config = self.stage_config
        if config.get("ckpt_path"):
            self.checkpoint = read_checkpoint(config.ckpt_path)
            subcommand = self.config.get("subcommand")
            stage_parser = self._subcommand_parsers[subcommand] if subcommand else parser
            adopt_checkpoint_settings(
                config, stage_parser.get_defaults(), self.checkpoint, config.ckpt_path
            )

    def before_instantiate_classes(self) -> None:
        config = self.stage_config
        accelerator = str(config.trainer.accelerator)
        if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise ValueError(
                f"trainer.accelerator={accelerator} asks for a GPU, but torch finds none here"
            )
        if torch.cuda.is_available():
            # TensorFloat-32 matrix products on tensor cores. Lightning otherwise prints
            # a tip about this on every run on such a GPU; float32 on the CPU is unchanged.
            torch.set_float32_matmul_precision("high")
        max_epochs = config.trainer.max_epochs
        if self.fitting and max_epochs is not None and max_epochs < 1:
            raise ValueError(f"trainer.max_epochs must be at least 1, got {max_epochs}")
        if self.fitting and self.checkpoint is not None:
            self._continue_in_run_folder(config)

    def _continue_in_run_folder(self, config: Any) -> None:
        """A resumed run writes on in the folder of the run it continues."""
        run = run_folder(config.ckpt_path)
        logger = config.trainer.logger
        if run is None or not isinstance(logger, Namespace):
            return
        if not str(logger.get("class_path", "")).endswith(".TensorBoardLogger"):
            return
        configured = Path(logger.init_args.save_dir) / str(logger.init_args.name)
        if configured.resolve() != run.parent.resolve():
            logger.init_args.save_dir = str(run.parent.parent)
            logger.init_args.name = run.parent.name
        logger.init_args.version = run.name
        # Steps logged after the checkpoint was written are hidden, so that the epochs
        # the resumed run repeats appear once.
        logger.init_args.purge_step = int(self.checkpoint["global_step"])

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, with this project's progress bar and checkpoint writer.

        The progress bar is redrawn every few steps instead of every step: an epoch
        here is ten steps of about a millisecond each, and a redraw costs more than a
        step. ``--trainer.enable_progress_bar false`` still switches it off, and a
        progress bar in ``--trainer.callbacks`` replaces it. Checkpoints are written
        and read by ``SafeCheckpointIO`` unless ``--trainer.plugins`` names another.
        """
        # The model exists and the trainer not yet: the last moment to refuse a checkpoint
        # before Lightning starts printing about the machine.
        if self.checkpoint is not None:
            check_state_dict(self.model, self.checkpoint, self.stage_config.ckpt_path)
        trainer_config = self._get(self.config_init, "trainer", default={})
        callbacks = _as_list(trainer_config.get("callbacks"))
        wants_bar = trainer_config.get("enable_progress_bar") is not False
        if wants_bar and not any(isinstance(callback, ProgressBar) for callback in callbacks):
            callbacks.append(TQDMProgressBar(refresh_rate=PROGRESS_BAR_REFRESH_RATE))
        plugins = _as_list(trainer_config.get("plugins"))
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins.append(SafeCheckpointIO())
        return super().instantiate_trainer(**{"callbacks": callbacks, "plugins": plugins, **kwargs})

    def _without_checkpointing(self) -> None:
        # validate/test/predict only read a checkpoint: the callbacks that write them
        # would restore their state from it and warn that its folder has changed, and
        # Lightning's reminder that they are missing does not apply when nothing trains.
        warnings.filterwarnings("ignore", message=r".*callbacks used to create the checkpoint.*")
        self.trainer.callbacks = [
            callback
            for callback in self.trainer.callbacks
            if not isinstance(callback, ModelCheckpoint)
        ]

    before_validate = before_test = before_predict = _without_checkpointing


def _as_list(value: Any) -> list[Any]:
    """A trainer argument that takes one object or a list of them, as a new list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def tensorboard_logdir(logger: object) -> str | None:
    """The folder to hand to ``tensorboard --logdir`` to see this run beside earlier ones."""
    if isinstance(logger, TensorBoardLogger):
        return str(logger.save_dir)
    return None


def close_process_group() -> None:
    """After DDP, close the process group before the interpreter exits.

    Otherwise gloo's threads abort at shutdown with "terminate called without an active
    exception" after a run that succeeded.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
