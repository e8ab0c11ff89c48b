"""The run's TensorBoard log: which logger writes it, and hyperparameters against real metrics.

TensorBoard's HPARAMS tab compares runs by their hyperparameters. Lightning's logger
writes them with a placeholder ``hp_metric`` of -1 (or, asked for other metrics, a dummy
value at step 0 of their curves); ``HParamsMetrics`` declares the real metric names
instead, whose values are the scalars the model logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.tensorboard.summary import hparams

from digits.training.folders import resumed_in_place
from digits.training.lightning_internals import write_summaries


def rank_zero_tensorboard(trainer: L.Trainer) -> TensorBoardLogger | None:
    """The run's TensorBoard logger, in the one process that writes it (rank zero)."""
    logger = trainer.logger
    if isinstance(logger, TensorBoardLogger) and trainer.is_global_zero:
        return logger
    return None


def tensorboard_logdir(logger: object) -> str | None:
    """The folder to hand to ``tensorboard --logdir`` to see this run beside earlier ones."""
    if isinstance(logger, TensorBoardLogger):
        return str(logger.save_dir)
    return None


def tensorboard_hparams(params: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """Hyperparameters as the scalar columns TensorBoard's HPARAMS tab can show.

    A class given by path (the network) becomes its class name in one column and each of
    its arguments in a column of its own (``network.hidden_sizes``), so that runs can be
    sorted and compared by them.
    """
    shown: dict[str, bool | int | float | str] = {}
    for key, value in params.items():
        if key.startswith("_"):  # Lightning's own bookkeeping, such as _instantiator
            continue
        if isinstance(value, Mapping) and "class_path" in value:
            shown[key] = str(value["class_path"]).rpartition(".")[2]
            arguments = {
                f"{key}.{name}": item for name, item in (value.get("init_args") or {}).items()
            }
            shown.update(tensorboard_hparams(arguments))
        elif isinstance(value, (bool, int, float, str)):
            shown[key] = value
        elif value is None:
            shown[key] = "None"
        else:
            shown[key] = str(list(value) if isinstance(value, Sequence) else value)
    return shown


class HParamsMetrics(L.Callback):
    """Shows the hyperparameters against the given metrics in TensorBoard's HPARAMS tab."""

    def __init__(self, metrics: Sequence[str] = ("val/acc_best", "test/acc")) -> None:
        self.metrics = list(metrics)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = rank_zero_tensorboard(trainer)
        if logger is None or resumed_in_place(trainer.ckpt_path, logger.log_dir):
            return
        params = dict(pl_module.hparams_initial)
        if trainer.datamodule is not None:
            params.update(trainer.datamodule.hparams_initial)
        # The run's seed (what seed_everything gave torch) and length, beside the settings.
        params.update(seed=torch.initial_seed(), max_epochs=trainer.max_epochs)
        summaries = hparams(tensorboard_hparams(params), dict.fromkeys(self.metrics, 0.0))
        write_summaries(logger.experiment, summaries)
