"""One trial: train every fold through ``digits.fit``'s own code path, in this process.

The trial's value is the mean over the folds of each fold's validation score at the end
of its training. The best epoch's score would be chosen on the same images it is
measured on, which rewards a noisy run for its luckiest epoch (docs/sweep.md has the
figures).

Optuna's median pruner watches the first fold's curve, one report per epoch through
optuna-integration's Lightning callback, and stops a trial that is worse than the median
of earlier trials at the same epoch; a trial that survives the first fold trains the
others. The test split is never touched: a run here only fits.
"""

from __future__ import annotations

import os
import socket
import statistics
from pathlib import Path

import lightning as L
import optuna
from optuna_integration.pytorch_lightning import PyTorchLightningPruningCallback

from digits.errors import one_line
from digits.fit import build, train
from digits.tools.sweep.space import SearchSpace, suggest
from digits.training.divergence import StopOnDivergence
from digits.training.interrupt import InterruptCheckpoint
from digits.training.tensorboard import HParamsMetrics

FIT_ARGS = "fit_args"  # a trial's attribute: its digits.fit arguments, without FOLD_RUN's

# A fold run keeps no checkpoint (the value is all a trial needs) and draws nothing.
FOLD_RUN = [
    *("--trainer.enable_checkpointing", "false", "--trainer.enable_progress_bar", "false"),
    *("--trainer.enable_model_summary", "false"),
]


class MetricHistory(L.Callback):
    """Every epoch's value of one validation metric."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.values: list[float] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and self.metric in trainer.callback_metrics:
            self.values.append(float(trainer.callback_metrics[self.metric]))


class CrossValidation:
    """Optuna's objective: the mean over ``folds`` folds of the last epoch's validation score."""

    def __init__(self, space: SearchSpace, folds: int, runs: Path, base_args: list[str]) -> None:
        self.space = space
        self.folds = folds
        self.runs = runs  # one TensorBoard run per fold: runs/trial_NNNN/fold_K
        self.base_args = base_args  # --config files and --fit_args, before the trial's values

    def __call__(self, trial: optuna.Trial) -> float:
        # Which machine and process ran it: where to look when a trial is lost or slow.
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        values = {key: suggest(trial, key, dist) for key, dist in self.space.params.items()}
        settings = [*self.base_args, *self.space.fit_args(values)]
        # The trial's whole digits.fit command line, from which its best.yaml is written,
        # whatever --config or --fit_args a later command continuing the study is given.
        trial.set_user_attr(FIT_ARGS, settings)
        args = [*settings, *FOLD_RUN]
        scores = []
        for fold in range(self.folds):
            score = self.fold(trial, args, fold)
            trial.set_user_attr(f"fold_{fold}", score)
            scores.append(score)
        return statistics.fmean(scores)

    def fold(self, trial: optuna.Trial, args: list[str], fold: int) -> float:
        history = MetricHistory(self.space.metric)
        callbacks: list[L.Callback] = [
            history,
            HParamsMetrics(("val/acc_best", "val/loss")),
            StopOnDivergence(),
            # Ctrl-C is acted on between two batches, as in digits.fit: raised wherever it
            # lands, it can land in a garbage collector's callback, which drops it.
            InterruptCheckpoint(),
        ]
        if fold == 0:
            callbacks.append(PyTorchLightningPruningCallback(trial, monitor=self.space.metric))
        run = [
            *args,
            *("--data.folds", str(self.folds), "--data.fold", str(fold)),
            "--trainer.logger=lightning.pytorch.loggers.TensorBoardLogger",
            f"--trainer.logger.init_args.save_dir={self.runs}",
            f"--trainer.logger.init_args.name=trial_{trial.number:04d}",
            f"--trainer.logger.init_args.version=fold_{fold}",
            "--trainer.logger.init_args.default_hp_metric=false",
        ]
        try:
            train(build(run, trainer_defaults={"callbacks": callbacks}, calibrates=False))
        except optuna.TrialPruned:
            raise
        except Exception as error:
            trial.set_user_attr("fail_reason", f"fold {fold}: {one_line(str(error))}")
            raise
        if not history.values:
            raise RuntimeError(f"fold {fold} logged no {self.space.metric}")
        return history.values[-1]
