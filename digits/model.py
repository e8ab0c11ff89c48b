"""Step 2, the model: how a network learns (``DigitsClassifier``).

The network itself is a plain ``nn.Module`` from ``digits.networks`` (the tutorial's
``MLP`` by default, or ``ConvNet``), named in the config by class path. Keeping it apart
from the ``LightningModule`` means it can be used, exported or replaced without
Lightning, and the LightningModule reads as the tutorial's loss + optimizer + metrics.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from digits.calibration import (
    CALIBRATION_BINS,
    NOT_A_DIGIT,
    TEMPERATURE,
    THRESHOLD,
    with_calibration,
)
from digits.errors import NonFiniteLossError
from digits.networks import MLP, NetworkFactory, as_factory, describe

Batch = tuple[torch.Tensor, torch.Tensor]
DRAWN = 1  # the dataloader of drawn digits, after the data set's own (data.drawn)


def accuracy(num_classes: int) -> MulticlassAccuracy:
    """The fraction of samples classified correctly, as the tutorial reports it.

    Non-digits (outlier exposure) have no right answer and are left out.
    """
    return MulticlassAccuracy(
        num_classes=num_classes, average="micro", ignore_index=NOT_A_DIGIT, validate_args=False
    )


class Scores(nn.Module):
    """What one stream of images is scored by: loss, accuracy and calibration error.

    ``ece`` is torchmetrics' top-label expected calibration error of the probabilities
    the model gives (after temperature scaling); ``ece_unscaled`` the same before it,
    kept for the test streams, where the two are compared.
    """

    def __init__(self, num_classes: int, calibration: bool, unscaled: bool = False) -> None:
        super().__init__()
        self.loss = MeanMetric(nan_strategy="disable")
        self.acc = accuracy(num_classes)
        self.ece = calibration_error(num_classes) if calibration else None
        self.ece_unscaled = calibration_error(num_classes) if unscaled else None


def calibration_error(num_classes: int) -> MulticlassCalibrationError:
    return MulticlassCalibrationError(
        num_classes=num_classes, n_bins=CALIBRATION_BINS, norm="l1", validate_args=False
    )


BEST_VAL_ACC = "val_acc_best.max_value"  # the state dict's entry of the best val/acc


def with_model_defaults(state_dict: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's state dict completed with what older files lack.

    Written before calibration: temperature 1, every reading sure. Written before the
    best val/acc was kept: none yet (MaxMetric's start, minus infinity).
    """
    completed = with_calibration(state_dict)
    completed.setdefault(BEST_VAL_ACC, torch.tensor(float("-inf")))
    return completed


class DigitsClassifier(L.LightningModule):
    """Cross-entropy, Adam and accuracy around a network.

    Metrics are updated every step and logged once per epoch: each ``self.log`` call
    costs about as much as a training step of this small network, and an epoch-level
    curve is what the user looks at anyway.

    Args:
        network: The network's class (with its own arguments in the config); it is
            built with the data's ``num_features`` and ``num_classes``.
        num_features: Inputs per sample; the CLI links it from the data module.
        num_classes: Output classes; the CLI links it from the data module.
        lr: Adam's learning rate (the tutorial's 1e-3); the peak of a schedule.
        weight_decay: Adam's L2 penalty.
        lr_schedule: ``constant`` (the tutorial), ``cosine`` (from ``lr`` down to 0 over
            the run) or ``onecycle`` (up to ``lr`` and down again), stepped every batch.
        outlier_weight: Outlier exposure: the weight of the loss that pulls a non-digit's
            ten probabilities towards 0.1 each (``data.outliers`` adds the non-digits).
    """

    def __init__(
        self,
        network: NetworkFactory = MLP,
        num_features: int = 64,
        num_classes: int = 10,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Literal["constant", "cosine", "onecycle"] = "constant",
        outlier_weight: float = 0.5,
    ) -> None:
        super().__init__()
        if lr <= 0:
            raise ValueError(f"model.lr must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"model.weight_decay must be 0 or more, got {weight_decay}")
        if outlier_weight < 0:
            raise ValueError(f"model.outlier_weight must be 0 or more, got {outlier_weight}")
        factory = as_factory(network)
        # save_hyperparameters records the locals: the network as {class_path, init_args}
        # (LightningCLI records its own parsed config the same way).
        with contextlib.suppress(ValueError):
            network = describe(network)
        self.save_hyperparameters()
        self.network = factory(num_features, num_classes)
        # Fitted after training on the validation images (digits.calibration) and kept
        # in the checkpoint: probabilities are softmax(logits / temperature), and a
        # reading is sure when its probability reaches the threshold.
        self.register_buffer(TEMPERATURE, torch.tensor(1.0))
        self.register_buffer(THRESHOLD, torch.tensor(0.0))
        # Plain accuracy (micro average; torchmetrics defaults to macro). validate_args
        # and nan_strategy="disable" skip per-step checks that would each force a host
        # synchronisation; a non-finite loss still shows in the epoch mean. Drawn digits
        # (data.drawn) are validated and tested apart, as a second dataloader.
        self.scores = nn.ModuleDict(
            {
                "fitting": Scores(num_classes, calibration=False),  # ("train" is a Module method)
                "val": Scores(num_classes, calibration=True),
                "val_drawn": Scores(num_classes, calibration=True),
                "test": Scores(num_classes, calibration=True, unscaled=True),
                "test_drawn": Scores(num_classes, calibration=True, unscaled=True),
            }
        )
        # The best val/acc so far, kept in the checkpoint (torchmetrics keeps a metric's
        # state out of the state dict unless told), so that a resumed run remembers it.
        self.val_acc_best = MaxMetric(nan_strategy="disable")
        self.val_acc_best.persistent(True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.network(features)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The calibrated probabilities: softmax of the logits over the temperature."""
        return (logits / self.temperature).softmax(dim=-1)

    def _shared_step(self, batch: Batch, scores: Scores) -> torch.Tensor:
        features, targets = batch
        logits = self(features)
        is_digit = targets != NOT_A_DIGIT
        digit_loss = F.cross_entropy(logits, targets.clamp(min=0), reduction="none")
        # A non-digit's target is the uniform distribution: the mean of -log p over the
        # ten classes (Hendrycks et al., 2019, outlier exposure).
        uniform_loss = -logits.log_softmax(dim=-1).mean(dim=-1) * self.hparams.outlier_weight
        losses = torch.where(is_digit, digit_loss, uniform_loss)
        # One value per image, so that the epoch's mean counts every image once however
        # the batches are cut. (A batch mean with weight=batch size would do the same,
        # but MeanMetric drops the weight under nan_strategy="disable": torchmetrics#3434.)
        scores.loss.update(losses.detach())
        scores.acc.update(logits.detach(), targets)
        if scores.ece is not None:
            scores.ece.update(self.probabilities(logits.detach()), targets)
        if scores.ece_unscaled is not None:
            scores.ece_unscaled.update(logits.detach().softmax(dim=-1), targets)
        return losses.mean()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, self.scores["fitting"])

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._shared_step(batch, self.scores["val_drawn" if dataloader_idx == DRAWN else "val"])

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._shared_step(batch, self.scores["test_drawn" if dataloader_idx == DRAWN else "test"])

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        features = batch[0] if isinstance(batch, (tuple, list)) else batch
        probability, digit = self.probabilities(self(features)).max(dim=-1)
        return {
            "digit": digit,
            "probability": probability,
            "sure": probability >= self.sure_threshold,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = with_model_defaults(checkpoint["state_dict"])

    def on_train_start(self) -> None:
        # Training changes the weights, so an earlier calibration (a run resumed from a
        # calibrated checkpoint) no longer holds; it is fitted again at the end.
        getattr(self, TEMPERATURE).fill_(1.0)
        getattr(self, THRESHOLD).fill_(0.0)

    def on_train_epoch_end(self) -> None:
        # One check per epoch (a step-level check would wait on the device every step).
        # It runs before the epoch's checkpoints are written, so none holds the
        # diverged weights. An epoch resumed after its last batch (a run stopped in its
        # validation) trained on nothing here: an empty mean is not a divergence.
        fitting = self.scores["fitting"]
        if fitting.loss.update_called:
            loss = fitting.loss.compute()
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"training diverged: train/loss is {loss.item()} in epoch "
                    f"{self.current_epoch} (model.lr={self.hparams.lr}); try a smaller "
                    "learning rate"
                )
        self._log_scores("fitting", "train/")

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val", "val/", prog_bar=True)
        # The sanity check before training runs validation too: it is no epoch's score.
        if not self.trainer.sanity_checking:
            self.val_acc_best.update(self.scores["val"].acc.compute())
            # A tensor, not the metric object, which Lightning would reset every epoch. Its
            # value is the same in every process; sync_dist says so to Lightning under DDP.
            self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)
        self._log_scores("val_drawn", "val/drawn_", prog_bar=True)

    def on_test_epoch_end(self) -> None:
        self._log_scores("test", "test/")
        self._log_scores("test_drawn", "test/drawn_")

    def _log_scores(self, stream: str, prefix: str, prog_bar: bool = False) -> None:
        """The stream's loss, accuracy and calibration errors, if it saw any image."""
        scores = self.scores[stream]
        if not scores.acc.update_called:
            return
        self.log(f"{prefix}loss", scores.loss)
        self.log(f"{prefix}acc", scores.acc, prog_bar=prog_bar)
        for name in ("ece", "ece_unscaled"):
            metric = getattr(scores, name)
            if metric is not None:
                self.log(f"{prefix}{name}", metric)

    def configure_optimizers(self) -> Any:
        # fused=True: one kernel for the whole update instead of several per parameter,
        # which shows in a step this small (docs/speed.md).
        optimizer = torch.optim.Adam(
            self.parameters(),
            lr=self.hparams.lr,
            weight_decay=self.hparams.weight_decay,
            fused=True,
        )
        schedule = self.hparams.lr_schedule
        if schedule == "constant":
            return optimizer
        steps = int(self.trainer.estimated_stepping_batches)
        if schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        else:
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=self.hparams.lr, total_steps=steps
            )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
