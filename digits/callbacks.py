"""Callbacks that the CLI always adds to the trainer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.tensorboard.summary import hparams


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


class HParamsMetrics(L.Callback):
    """Shows the hyperparameters against the given metrics in TensorBoard's HPARAMS tab.

    Lightning's logger writes the hyperparameters with a placeholder ``hp_metric`` of
    -1 (or, asked for other metrics, a dummy value at step 0 of their curves). This
    only declares the metric names; their values are the scalars the model logs.
    """

    def __init__(self, metrics: Sequence[str] = ("val/acc_best", "test/acc")) -> None:
        self.metrics = list(metrics)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = trainer.logger
        if not isinstance(logger, TensorBoardLogger) or not trainer.is_global_zero:
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


class LatestBestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that, among epochs with equal scores, keeps the latest.

    Accuracy on a validation split of ~135 images moves in steps of 0.74%, so many
    epochs tie. Lightning keeps the first of them, usually a model that has trained
    for fewer epochs; the validation split cannot tell them apart, the test split can.
    """

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        if current is None or len(self.best_k_models) < self.save_top_k or self.save_top_k < 0:
            return super().check_monitor_top_k(trainer, current)
        kth_score = self.best_k_models[self.kth_best_model_path]
        ties = trainer.strategy.reduce_boolean_decision(bool(current == kth_score))
        return ties or super().check_monitor_top_k(trainer, current)
