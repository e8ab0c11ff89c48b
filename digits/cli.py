"""Step 3, training: the ``LightningCLI`` that every entry point shares.

It sets the trainer defaults once (TensorBoard logger, best and last checkpoints, a
fixed seed, the tutorial's 50 epochs), links the data module's shape into the model so
that it is never typed twice, and turns a user's mistake into one line and exit code 2.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jsonargparse import ArgumentError, lazy_instance
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, TQDMProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from digits.callbacks import HParamsMetrics, LatestBestCheckpoint
from digits.data import DigitsDataModule
from digits.model import DigitsClassifier

DEFAULT_SEED = 0  # recorded in every run's config.yaml as seed_everything
LOG_DIR = "lightning_logs"
USAGE_ERROR = 2  # the exit code argparse uses for a bad command line
MAX_ERROR_LENGTH = 200
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
# Lightning 2.6 still uses torch's LeafSpec, which torch 2.13 deprecates; harmless, and
# nothing a user of this project can change.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


class DigitsCLI(LightningCLI):
    """LightningCLI with this project's defaults and argument links."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("model_class", DigitsClassifier)
        kwargs.setdefault("datamodule_class", DigitsDataModule)
        kwargs.setdefault("seed_everything_default", DEFAULT_SEED)
        kwargs.setdefault("trainer_defaults", {"callbacks": [HParamsMetrics()]})
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

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, with a progress bar redrawn every few steps instead of every step.

        An epoch here is ten steps of about a millisecond each; redrawing the bar after
        each one costs more than the step. ``--trainer.enable_progress_bar false`` still
        switches it off, and a progress bar in ``--trainer.callbacks`` replaces it.
        """
        trainer_config = self._get(self.config_init, "trainer", default={})
        callbacks = trainer_config.get("callbacks") or []
        callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks)
        wants_bar = trainer_config.get("enable_progress_bar") is not False
        if wants_bar and not any(isinstance(callback, ProgressBar) for callback in callbacks):
            callbacks.append(TQDMProgressBar(refresh_rate=PROGRESS_BAR_REFRESH_RATE))
        return super().instantiate_trainer(**{"callbacks": callbacks, **kwargs})

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


def tensorboard_logdir(logger: object) -> str | None:
    """The folder to hand to ``tensorboard --logdir`` to see this run beside earlier ones."""
    if isinstance(logger, TensorBoardLogger):
        return str(logger.save_dir)
    return None


def one_line(message: str) -> str:
    """jsonargparse's multi-line explanation of a bad value, as one readable line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "invalid arguments"
    text = lines[0]
    details = dict(line.partition(": ")[::2] for line in lines[1:])
    if "Given value" in details and "Subtypes" in details:
        text += f" expected one of {details['Subtypes']}, got {details['Given value']!r}"
    elif len(lines) > 1:
        text += " " + lines[1]
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 3] + "..."


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn a mistake in the configuration into one line on stderr and exit code 2.

    Wraps building the CLI: parsing and instantiating the data module, the model and
    the trainer. Those only check and store values, so an error there means a bad
    value from the user, and nothing has been written yet.
    """
    try:
        yield
    except (ArgumentError, ValueError, MisconfigurationException) as error:
        print(f"error: {one_line(str(error))}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR) from None
