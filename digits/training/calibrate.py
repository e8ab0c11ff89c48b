"""Probabilities that mean what they say: ``Calibrate``, a callback composed into every run.

``digits.reading.sure`` has the method (temperature scaling and the "sure" threshold).
This callback runs it once training ends, on the validation images of every validation
set, for each of the two checkpoints a run keeps (the best, which is then tested, and
``last.ckpt``) on that checkpoint's own weights, and keeps the two numbers as its state
in them: Lightning restores them whenever a checkpoint
is validated, tested or used to predict, and the tools read them from the file
(``digits.reading.checkpoint.calibration_of``). Meanwhile it scores how calibrated the
model is: ``val/ece`` every epoch, and ``test/ece`` with the temperature beside
``test/ece_unscaled`` without it, for each evaluation set. The model knows nothing of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import move_data_to_device
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassCalibrationError

from digits.metrics import NO_CLASS, class_labels
from digits.reading.checkpoint import (
    CALIBRATION_STATE,
    NO_CALIBRATION,
    read_checkpoint,
    write_atomically,
)
from digits.reading.sure import (
    CALIBRATION_BINS,
    TARGET_ERROR,
    THRESHOLD_RULES,
    Calibration,
    ThresholdRule,
    fit_calibration,
)
from digits.training.checkpoints import last_checkpoints, this_runs_best
from digits.training.tensorboard import rank_zero_tensorboard

ONE_BATCH_UP_TO = 16_384  # images: a validation set up to this size is one forward pass


def logits_for(
    trainer: L.Trainer, model: L.LightningModule, features: torch.Tensor
) -> torch.Tensor:
    """The model's logits for a whole split at once, on the model's device, in eval mode.

    In the trainer's precision where it still applies; after ``fit`` Lightning has moved
    the model back to the CPU, where calibration then computes in float32.
    """
    precision = trainer.precision_plugin
    was_training = model.training
    model.eval()
    with torch.no_grad(), precision.forward_context():
        logits = model(precision.convert_input(features.to(model.device))).float()
    model.train(was_training)
    return logits


def every_batch(loader: DataLoader) -> DataLoader:
    """The loader's data set in order and whole, in every process (no distributed sampler).

    In one batch where it is small enough, as the tools read a set: the fit of the
    temperature stops on a tolerance, and the logits of other batch shapes differ in
    their last bits, enough to move it by a few thousandths.
    """
    batch_size = min(len(loader.dataset), ONE_BATCH_UP_TO)
    return DataLoader(loader.dataset, batch_size=batch_size, collate_fn=loader.collate_fn)


def loader_list(loaders: Any) -> list[DataLoader]:
    if loaders is None:
        return []
    return list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]


class Calibrate(L.Callback):
    """Fits the temperature and the "sure" threshold after training, and keeps them.

    Args:
        target_error: At most this share of each validation set's sure readings may be
            wrong. Its own writers' digits are easier than other people's: a model that
            reads people (``configs/best.yaml``) sets less, to leave room for them.
        rule: How a validation set's wrong sure readings are told: ``counted`` on the
            labels, or ``expected`` from the calibrated probabilities, steadier where
            mistakes are few but only as honest as the probabilities at the top. Each
            config's is measured on validation (``scripts/threshold_target.py``).
    """

    def __init__(self, target_error: float = TARGET_ERROR, rule: ThresholdRule = "counted") -> None:
        if not 0 <= target_error < 1:
            raise ValueError(f"calibrate.target_error must be 0 to 1, got {target_error}")
        if rule not in THRESHOLD_RULES:
            raise ValueError(
                f"calibrate.rule must be one of {', '.join(THRESHOLD_RULES)}, got {rule!r}"
            )
        if rule == "expected" and target_error == 0:
            raise ValueError("calibrate.target_error must be above 0 for calibrate.rule expected")
        self.target_error = target_error
        self.rule = rule
        self.temperature = NO_CALIBRATION["temperature"]
        self.threshold = NO_CALIBRATION["threshold"]
        self.fitted: Calibration | None = None  # this run's fit, with how it fares
        self.errors: dict[str, MulticlassCalibrationError] = {}
        self.predicted = torch.zeros(2, dtype=torch.long)  # readings and sure ones, predicting

    @property
    def state_key(self) -> str:
        return CALIBRATION_STATE  # the tools look for it under this name

    def state_dict(self) -> dict[str, float]:
        return {"temperature": self.temperature, "threshold": self.threshold}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.temperature = float(state_dict["temperature"])
        self.threshold = float(state_dict["threshold"])

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The calibrated probabilities: softmax of the logits over the temperature."""
        return (logits / self.temperature).softmax(dim=-1)

    # Scoring: the calibration error of each evaluation set, with the temperature and
    # (in the test) without it.

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Training changes the weights, so an earlier calibration (a run resumed from a
        # calibrated checkpoint) no longer holds; it is fitted again at the end.
        self.load_state_dict(NO_CALIBRATION)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.errors = {}  # nothing left over from an epoch cut short

    @staticmethod
    def validation_metric_names(pl_module: L.LightningModule) -> list[str]:
        """What this callback logs every validation epoch: ``val/ece`` for each set."""
        return [
            f"{pl_module.prefix('val', index)}ece"
            for index in range(1 + len(pl_module.hparams.eval_sets))
        ]

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.errors = {}

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        prefix = pl_module.prefix("val", dataloader_idx)
        self._update(pl_module, prefix, outputs, batch[1])
        batches = (
            trainer.num_sanity_val_batches if trainer.sanity_checking else trainer.num_val_batches
        )
        if batch_idx + 1 == batches[dataloader_idx]:
            self._log(pl_module, [f"{prefix}ece"])

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        prefix = pl_module.prefix("test", dataloader_idx)
        self._update(pl_module, prefix, outputs, batch[1])
        self._update(pl_module, prefix, outputs, batch[1], scaled=False)
        if batch_idx + 1 == trainer.num_test_batches[dataloader_idx]:
            self._log(pl_module, [f"{prefix}ece", f"{prefix}ece_unscaled"])

    def _update(
        self,
        pl_module: L.LightningModule,
        prefix: str,
        logits: torch.Tensor,
        targets: torch.Tensor,
        scaled: bool = True,
    ) -> None:
        name = f"{prefix}ece" if scaled else f"{prefix}ece_unscaled"
        if name not in self.errors:
            # An image whose target spreads over the classes has no right answer: left out.
            self.errors[name] = MulticlassCalibrationError(
                num_classes=logits.shape[1],
                n_bins=CALIBRATION_BINS,
                ignore_index=NO_CLASS,
                validate_args=False,
            ).to(logits.device)
        temperature = self.temperature if scaled else 1.0
        self.errors[name].update((logits / temperature).softmax(dim=-1), class_labels(targets))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(pl_module, list(self.errors))  # a loader without a length: no last batch

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(pl_module, list(self.errors))

    def _log(self, pl_module: L.LightningModule, names: list[str]) -> None:
        """Logged at a loader's last batch, where Lightning knows which loader it measures
        and lists it under that loader alone (logged at the epoch's end, it would stand
        under every loader). Each value is computed over every process's images
        (torchmetrics synchronises), so every process logs the same; sync_dist says so."""
        for name in names:
            error = self.errors.pop(name)
            value = error.compute()  # batch_size 1: the value as it is, not a weighted mean
            pl_module.log(
                name, value, batch_size=1, sync_dist=True, add_dataloader_idx=False, on_epoch=True
            )

    # Fitting, once training ends.

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Each checkpoint the run kept is calibrated on its own weights.

        ``last.ckpt`` (the last epoch) may hold other weights than the best checkpoint,
        and any of them may be the one a user reads. The best is fitted last, so that the
        callback, the logged numbers and the test that follows are the best's.
        """
        loaders = loader_list(trainer.val_dataloaders)
        if trainer.fast_dev_run or not loaders:
            return
        for path in each_kept_checkpoint(trainer, pl_module):
            logits, labels, sets = self.logits_and_labels(trainer, pl_module, loaders)
            self.fitted = fit_calibration(logits, labels, self.target_error, sets, self.rule)
            self.temperature, self.threshold = self.fitted.temperature, self.fitted.threshold
            if path and trainer.is_global_zero:
                keep_state_in(Path(path), self.state_key, self.state_dict())
        logger = rank_zero_tensorboard(trainer)
        if logger is not None:
            logger.log_metrics(calibration_scalars(self.fitted), trainer.global_step)
        trainer.strategy.barrier()  # the test reads the best checkpoint next

    @staticmethod
    def logits_and_labels(
        trainer: L.Trainer, pl_module: L.LightningModule, loaders: list[DataLoader]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits and labels of every image of every loader's set, the same in every process,
        and the number of the loader each came from."""
        logits, labels, sets = [], [], []
        for number, loader in enumerate(loaders):
            for batch in every_batch(loader):
                # Moved as they are: the strategy's batch_to_device would also run the
                # data module's on_after_batch_transfer, which transforms training batches.
                features, targets = move_data_to_device(batch, pl_module.device)
                logits.append(logits_for(trainer, pl_module, features))
                labels.append(class_labels(targets.to(logits[-1].device)))
                sets.append(torch.full_like(labels[-1], number))
        logits, labels, sets = torch.cat(logits), torch.cat(labels), torch.cat(sets)
        scored = labels != NO_CLASS  # an image whose target spreads has no right answer
        return logits[scored], labels[scored], sets[scored]

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A reliability diagram of every test set in the Images tab (rank zero)."""
        logger = rank_zero_tensorboard(trainer)
        if logger is None:
            return
        from digits.training.figures import reliability_figure

        streams = {}
        for index, loader in enumerate(loader_list(trainer.test_dataloaders)):
            name = pl_module.hparams.eval_sets[index - 1] if index else "test split"
            logits, labels, _ = self.logits_and_labels(trainer, pl_module, [loader])
            streams[name] = (self.probabilities(logits).cpu().numpy(), labels.cpu().numpy())
        figure = reliability_figure(streams)
        logger.experiment.add_figure("test/reliability", figure, trainer.global_step)

    # Predicting: the readings with the temperature, and whether each is sure.

    def on_predict_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Adds ``sure`` to the model's readings, with the calibrated probability.

        It changes the model's own output dict, so that a prediction writer listed after
        this callback writes the calibrated readings.
        """
        if not isinstance(outputs, dict) or "logits" not in outputs:
            return
        probability, _ = self.probabilities(outputs["logits"]).max(dim=-1)
        outputs["probability"] = probability
        # A callback listed before this one may have found some images unlike the training
        # digits (digits.training.familiar): those are not sure either.
        outputs["sure"] = (probability >= self.threshold) & outputs.get("familiar", True)
        self.predicted += torch.tensor([len(probability), int(outputs["sure"].sum())])

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.predicted = torch.zeros(2, dtype=torch.long)  # readings, sure ones

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """From the shell, ``predict`` would end without a word: say what it read."""
        device_counts = self.predicted.to(pl_module.device)
        read, sure = (
            int(count) for count in trainer.strategy.reduce(device_counts, reduce_op="sum")
        )
        if read and trainer.is_global_zero:
            print(f"predict: read {read} images, {sure} of them sure ({sure / read:.1%})")


def checkpoints_to_fit(trainer: L.Trainer) -> list[str]:
    """The checkpoints a callback that fits something after training fits it for, each on
    its own weights: ``last.ckpt`` (and the like), then the best, which is tested next and
    so is fitted last; ``""`` for the weights in memory when no best was saved."""
    best_path = this_runs_best(trainer)
    others = [path for path in dict.fromkeys(last_checkpoints(trainer)) if path != best_path]
    return [*others, best_path]


def each_kept_checkpoint(trainer: L.Trainer, pl_module: L.LightningModule) -> Iterator[str]:
    """Puts the weights of each checkpoint to fit (``checkpoints_to_fit``) into the module in
    turn, and yields its path; the final weights are back in the module afterwards, as
    ``fit`` leaves them, so that ``""`` and the test after it read those."""
    # On the CPU: a copy beside the weights would double a large network's GPU memory.
    final = {
        name: value.detach().to("cpu", copy=True) for name, value in pl_module.state_dict().items()
    }
    try:
        for path in checkpoints_to_fit(trainer):
            pl_module.load_state_dict(read_checkpoint(path)["state_dict"] if path else final)
            yield path
    finally:
        pl_module.load_state_dict(final)


def keep_state_in(path: Path, key: str, state: dict[str, Any]) -> None:
    """Writes a callback's fitted state into a checkpoint this run saved before it existed."""
    checkpoint = read_checkpoint(path)
    checkpoint.setdefault("callbacks", {})[key] = state
    write_atomically(checkpoint, path)


def calibration_scalars(calibration: Calibration) -> dict[str, float]:
    """The fitted numbers as TensorBoard scalars, at the run's last step."""
    return {
        "calibration/temperature": calibration.temperature,
        "calibration/threshold": calibration.threshold,
        "calibration/val_coverage": calibration.coverage,
        "calibration/val_sure_error": calibration.sure_error,
    }
