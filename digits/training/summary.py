"""How a training run ends: the test of its best checkpoint, and where everything is.

A callback with something to add (``digits.training.familiar.DeclineUnfamiliar``) gives
its lines from a ``summary_lines()`` method, printed after the calibration's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightning as L

from digits.reading.checkpoint import read_checkpoint
from digits.reading.sure import Calibration
from digits.training.calibrate import Calibrate
from digits.training.checkpoints import last_checkpoints, this_runs_best
from digits.training.folders import run_log_dir
from digits.training.tensorboard import tensorboard_logdir


@dataclass(frozen=True)
class FitSummary:
    """What a finished run leaves behind, as printed at the end."""

    best_score: float | None  # the best checkpoint's value of ``monitor``
    test_acc: float | None  # None: not tested (--trainer.limit_test_batches 0)
    checkpoint: str | None
    log_dir: str | None
    tensorboard_logdir: str | None
    monitor: str | None = "val/acc"  # what chose the best checkpoint; None: the last epoch
    calibration: Calibration | None = None  # fitted on validation after training
    test_ece: tuple[float, float] | None = None  # (before, after) temperature scaling
    # The accuracy and ECEs of each further test set a data source brings, by its name.
    further_tests: dict[str, float] = field(default_factory=dict)
    further_eces: dict[str, tuple[float, float]] = field(default_factory=dict)
    more: tuple[str, ...] = ()  # lines of the run's callbacks that have something to say
    last_checkpoint: str | None = None  # last.ckpt, when no checkpoint was chosen
    last_checkpoint_epoch: int | None = None  # its epoch, when not the weights tested

    def lines(self) -> list[str]:
        best = "n/a" if self.best_score is None else f"{self.best_score:.4f}"
        tested = "the best checkpoint" if self.checkpoint else "the final weights"
        if self.monitor is None and self.checkpoint:
            kept, tested = (
                "kept          the last epoch (no monitor)",
                "the last epoch's checkpoint",
            )
        else:
            kept = f"{'best ' + (self.monitor or 'val/acc'):<13} {best}"
        lines = [
            kept,
            f"test/acc      {self.test_acc:.4f}  ({tested})"
            if self.test_acc is not None
            else "test/acc      not run (trainer.limit_test_batches=0)",
            *(
                f"{'test/' + name:<13} {accuracy:.4f}  (the {name} test set, the same checkpoint)"
                for name, accuracy in self.further_tests.items()
            ),
            *self.calibration_lines(),
            *self.more,
            f"checkpoint    {self.checkpoint_line()}",
            f"logs          {self.log_dir or 'none written'}",
        ]
        if self.tensorboard_logdir:
            lines.append(f"to look:      tensorboard --logdir {self.tensorboard_logdir}")
        return lines

    def checkpoint_line(self) -> str:
        if self.checkpoint:
            return self.checkpoint
        if self.last_checkpoint:  # e.g. --trainer.limit_val_batches 0: nothing to choose by
            if self.last_checkpoint_epoch is None:
                return f"{self.last_checkpoint}  (the last epoch; none chosen by validation)"
            return (
                f"{self.last_checkpoint}  (epoch {self.last_checkpoint_epoch}, the last saved; "
                "none chosen by validation)"
            )
        return "none saved"

    def calibration_lines(self) -> list[str]:
        if self.calibration is None:
            return []
        fitted = self.calibration
        sure = f"sure          probability >= {fitted.threshold:.4f}: " + (
            f"{fitted.coverage:.1%} of the validation readings, {fitted.sure_error:.1%} of "
            "those wrong"
            if fitted.coverage > 0
            else "none of the validation readings"  # no share of none is wrong
        )
        if self.test_ece is None:
            return [sure]  # not tested: what validation chose is still worth saying
        ece = f"test/ece      {self.test_ece[0]:.4f} -> {self.test_ece[1]:.4f}"
        for name, (before, after) in self.further_eces.items():
            ece += f" ({name} {before:.4f} -> {after:.4f})"
        return [f"{ece}, temperature {fitted.temperature:.3f}", sure]


def evaluate_best_and_summarize(
    trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule
) -> FitSummary:
    """Test the best checkpoint (or, with none saved, the weights in memory); print the summary.

    The test split is used here once, after every choice (the epoch kept, the settings,
    the temperature and the "sure" threshold) was made on validation.
    """
    checkpoint = trainer.checkpoint_callback
    best_path = this_runs_best(trainer)
    calibrated = [callback for callback in trainer.callbacks if isinstance(callback, Calibrate)]
    calibration = calibrated[0].fitted if calibrated else None
    results = {}  # each test loader's figures, the data set's and any further set's
    for loader_results in trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None):
        results.update(loader_results)
    best_score = checkpoint.best_model_score if best_path else None
    further = [name for name in model.hparams.get("eval_sets", ()) if f"test/{name}_acc" in results]
    last, last_epoch = _last_saved(trainer) if not best_path else (None, None)
    # fast_dev_run writes nothing; run_log_dir is a collective call under DDP.
    log_dir = None if trainer.fast_dev_run else run_log_dir(trainer)
    summary = FitSummary(
        best_score=None if best_score is None else float(best_score),
        test_acc=results.get("test/acc"),  # none with limit_test_batches=0: not tested
        checkpoint=best_path or None,
        log_dir=log_dir,
        tensorboard_logdir=tensorboard_logdir(trainer.logger) if log_dir else None,
        monitor=checkpoint.monitor if checkpoint is not None else "val/acc",
        calibration=calibration,
        test_ece=_before_after(results, "test/"),
        further_tests={name: results[f"test/{name}_acc"] for name in further},
        further_eces={
            name: eces
            for name in further
            if (eces := _before_after(results, f"test/{name}_")) is not None
        },
        more=tuple(
            line
            for callback in trainer.callbacks
            for line in getattr(callback, "summary_lines", list)()
        ),
        last_checkpoint=last,
        last_checkpoint_epoch=last_epoch,
    )
    if trainer.is_global_zero:
        print("\n".join(summary.lines()))
    return summary


def _last_saved(trainer: L.Trainer) -> tuple[str | None, int | None]:
    """``last.ckpt`` (or the like) and, when it holds an earlier step than the weights
    tested (``--last_checkpoint.every_n_epochs 2``), the epoch it holds."""
    paths = last_checkpoints(trainer)
    if not paths:
        return None, None
    saved = {path: read_checkpoint(path) for path in paths}
    for path, checkpoint in saved.items():
        if checkpoint["global_step"] == trainer.global_step:
            return path, None
    return paths[0], int(saved[paths[0]]["epoch"])


def _before_after(results: dict[str, float], prefix: str) -> tuple[float, float] | None:
    if f"{prefix}ece" not in results:
        return None
    return results[f"{prefix}ece_unscaled"], results[f"{prefix}ece"]
