"""Callbacks that the CLI always adds to the trainer."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard.summary import hparams

from digits.resume import resume_command, resumed_in_place


def tensorboard_hparams(params: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """Hyperparameters as the scalar types TensorBoard's HPARAMS tab can show."""
    shown: dict[str, bool | int | float | str] = {}
    for key, value in params.items():
        if key.startswith("_"):  # Lightning's own bookkeeping, such as _instantiator
            continue
        if isinstance(value, (bool, int, float, str)):
            shown[key] = value
        elif value is None:
            shown[key] = "None"
        else:
            shown[key] = str(list(value) if isinstance(value, Sequence) else value)
    return shown


def rank_zero_tensorboard(trainer: L.Trainer) -> TensorBoardLogger | None:
    """The run's TensorBoard logger, in the one process that writes it (rank zero)."""
    logger = trainer.logger
    if isinstance(logger, TensorBoardLogger) and trainer.is_global_zero:
        return logger
    return None


class HParamsMetrics(L.Callback):
    """Shows the hyperparameters against the given metrics in TensorBoard's HPARAMS tab.

    Lightning's logger writes the hyperparameters with a placeholder ``hp_metric`` of
    -1 (or, asked for other metrics, a dummy value at step 0 of their curves). This
    only declares the metric names; their values are the scalars the model logs.
    """

    def __init__(self, metrics: Sequence[str] = ("val/acc_best", "test/acc")) -> None:
        self.metrics = list(metrics)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = rank_zero_tensorboard(trainer)
        if logger is None or resumed_in_place(trainer.ckpt_path, logger.log_dir):
            return
        params = dict(pl_module.hparams_initial)
        if trainer.datamodule is not None:
            params.update(trainer.datamodule.hparams_initial)
        experiment, session_start, session_end = hparams(
            tensorboard_hparams(params), dict.fromkeys(self.metrics, 0.0)
        )
        writer = logger.experiment._get_file_writer()  # as TensorBoardLogger itself does
        for summary in (experiment, session_start, session_end):
            writer.add_summary(summary)


class InterruptCheckpoint(L.Callback):
    """On Ctrl-C or SIGTERM, saves the interrupted state as ``interrupted.ckpt``.

    The run's ``last.ckpt`` (the end of the last complete epoch) stays as it was: that
    is the one to resume from for the same result as an uninterrupted run. This one
    keeps the part of an epoch that was done. Other exceptions save nothing, so a
    diverged model is not kept as if it were a result.
    """

    def __init__(self) -> None:
        self.saved: Path | None = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        checkpoint = trainer.checkpoint_callback
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or not checkpoint:
            return
        if checkpoint.dirpath is None:
            return
        self.saved = Path(checkpoint.dirpath) / "interrupted.ckpt"
        trainer.save_checkpoint(self.saved, weights_only=False)
        if not trainer.is_global_zero or trainer.log_dir is None:
            return
        last = Path(checkpoint.dirpath) / "last.ckpt"
        signal = "Ctrl-C" if isinstance(exception, KeyboardInterrupt) else "SIGTERM"
        how = "from the end of the last complete epoch, as an uninterrupted run would go on"
        print(
            f"\nStopped by {signal} in epoch {trainer.current_epoch}; the state so far is in "
            f"{self.saved}.\nTo resume {how if last.exists() else 'from there'}:\n  "
            f"{resume_command(Path(trainer.log_dir), last if last.exists() else self.saved)}",
            file=sys.stderr,
            flush=True,
        )


class EpochScalarsInCheckpoint(L.Callback):
    """Keeps an epoch's ``train/*`` values in the checkpoints written at its end.

    Lightning writes an epoch's checkpoints before it logs that epoch's training
    metrics, about a millisecond later (validation metrics are logged and flushed
    before). A run killed in between leaves a ``last.ckpt`` whose epoch has no
    ``train/*`` points in TensorBoard, and the resumed run, which starts after that
    epoch, would never log them. So the values go into the checkpoint, and a run
    resumed in its own folder logs those that never reached the event files.
    """

    KEY = "digits_epoch_end_scalars"

    def __init__(self) -> None:
        self.pending: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        progress = trainer.fit_loop.epoch_progress.current
        if progress.processed == progress.completed:
            return  # mid-epoch (Ctrl-C), where the last epoch's metrics are already logged
        checkpoint[self.KEY] = {
            "step": trainer.global_step - 1,  # where Lightning logs the epoch's metrics
            "scalars": {
                name: float(value)
                for name, value in trainer.callback_metrics.items()
                if name.startswith("train/")
            },
        }

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.pending = checkpoint.get(self.KEY)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pending, self.pending = self.pending, None
        logger = rank_zero_tensorboard(trainer)
        if pending is None or logger is None:
            return
        if not resumed_in_place(trainer.ckpt_path, logger.log_dir):
            return
        step = pending["step"]
        events = EventAccumulator(logger.log_dir, size_guidance={"scalars": 0})
        events.Reload()
        logged = set(events.Tags()["scalars"])
        missing = {
            name: value
            for name, value in pending["scalars"].items()
            if name not in logged or step not in {event.step for event in events.Scalars(name)}
        }
        if missing:
            logger.log_metrics(missing, step=step)
            logger.save()
