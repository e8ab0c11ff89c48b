"""What the numbers look like: confusion matrices and digit grids in TensorBoard's Images tab.

Drawn once per run, never per step: sample training inputs when training starts, the
validation confusion matrix when fitting ends (of the final weights), the test confusion
matrix (of the weights tested, usually the best checkpoint's; each title says which) and
the misclassified test digits when testing ends. matplotlib is imported here only to draw
(torchmetrics, which Lightning imports, loads it at start-up anyway when it is installed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from digits.dataset import DigitsSplits
from digits.training.calibrate import logits_for
from digits.training.figures import digit_grid
from digits.training.folders import resumed_in_place
from digits.training.tensorboard import rank_zero_tensorboard

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch.utils.tensorboard import SummaryWriter

    from digits.data import DigitsDataModule


def confusion_figure(
    predictions: torch.Tensor, targets: torch.Tensor, title: str, num_classes: int
) -> Figure:
    """torchmetrics' confusion matrix with counts, true labels down, predicted across."""
    # Drawn by one process over the whole split: no synchronisation with the others,
    # which are not computing it (under DDP they would wait forever).
    matrix = MulticlassConfusionMatrix(num_classes=num_classes, sync_on_compute=False)
    matrix = matrix.to(predictions.device)
    matrix.update(predictions, targets)
    figure, axes = matrix.plot(labels=[str(label) for label in range(num_classes)])
    axes.set_title(title)
    return figure


class TensorBoardPictures(L.Callback):
    """Adds the pictures to the run's TensorBoard log (rank zero, TensorBoard only).

    Args:
        samples: How many training inputs to show.
        max_misclassified: At most how many misclassified test digits to show.
    """

    def __init__(self, samples: int = 32, max_misclassified: int = 48) -> None:
        self.samples = samples
        self.max_misclassified = max_misclassified

    @staticmethod
    def _writer(trainer: L.Trainer) -> SummaryWriter | None:
        logger = rank_zero_tensorboard(trainer)
        if logger is None or not isinstance(
            getattr(trainer.datamodule, "splits", None), DigitsSplits
        ):
            return None  # another data module: nothing here knows its images
        return logger.experiment

    @staticmethod
    def _predict(
        trainer: L.Trainer, pl_module: L.LightningModule, features: torch.Tensor
    ) -> torch.Tensor:
        """The model's digits for a whole split, in the trainer's precision (64-true, bf16...)."""
        return logits_for(trainer, pl_module, features).argmax(dim=1)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = self._writer(trainer)
        if writer is None or resumed_in_place(trainer.ckpt_path, trainer.logger.log_dir):
            return  # once per run, not again when it resumes
        datamodule: DigitsDataModule = trainer.datamodule
        images, labels = datamodule.splits.arrays("train", scaled=False)
        shown = slice(0, self.samples)
        titles = [str(label) for label in labels[shown]]
        writer.add_figure("train/samples", digit_grid(images[shown], titles), global_step=0)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = self._writer(trainer)
        if writer is None:
            return
        datamodule: DigitsDataModule = trainer.datamodule
        val_set = datamodule.val_set
        predictions = self._predict(trainer, pl_module, val_set.features)
        targets = val_set.targets.to(predictions.device)
        # Drawn as training ends: the weights of its last epoch, not the best checkpoint's.
        title = f"validation, the final weights (epoch {trainer.current_epoch - 1})"
        figure = confusion_figure(predictions, targets, title, datamodule.num_classes)
        writer.add_figure("val/confusion_matrix", figure, global_step=trainer.global_step)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = self._writer(trainer)
        if writer is None:
            return
        datamodule: DigitsDataModule = trainer.datamodule
        test_set = datamodule.test_set
        predictions = self._predict(trainer, pl_module, test_set.features)
        targets = test_set.targets.to(predictions.device)
        step = trainer.global_step
        tested = Path(trainer.ckpt_path).name if trainer.ckpt_path else "the final weights"
        figure = confusion_figure(predictions, targets, f"test, {tested}", datamodule.num_classes)
        writer.add_figure("test/confusion_matrix", figure, step)
        wrong = (predictions != targets).nonzero().flatten()[: self.max_misclassified].cpu()
        images, labels = datamodule.splits.arrays("test", scaled=False)
        guesses = predictions.cpu().numpy()
        titles = [f"{labels[i]} -> {guesses[i]}" for i in wrong.tolist()]
        writer.add_figure("test/misclassified", digit_grid(images[wrong.numpy()], titles), step)
        writer.flush()
