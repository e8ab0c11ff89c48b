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
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from digits.errors import NonFiniteLossError
from digits.networks import MLP, NetworkFactory, as_factory, describe

Batch = tuple[torch.Tensor, torch.Tensor]
DRAWN = 1  # the dataloader of drawn digits, after the data set's own (data.drawn)


def accuracy(num_classes: int) -> MulticlassAccuracy:
    """The fraction of samples classified correctly, as the tutorial reports it."""
    return MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False)


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
    """

    def __init__(
        self,
        network: NetworkFactory = MLP,
        num_features: int = 64,
        num_classes: int = 10,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Literal["constant", "cosine", "onecycle"] = "constant",
    ) -> None:
        super().__init__()
        if lr <= 0:
            raise ValueError(f"model.lr must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"model.weight_decay must be 0 or more, got {weight_decay}")
        factory = as_factory(network)
        # save_hyperparameters records the locals: the network as {class_path, init_args}
        # (LightningCLI records its own parsed config the same way).
        with contextlib.suppress(ValueError):
            network = describe(network)
        self.save_hyperparameters()
        self.network = factory(num_features, num_classes)
        # Plain accuracy (micro average; torchmetrics defaults to macro). validate_args
        # and nan_strategy="disable" skip per-step checks that would each force a host
        # synchronisation; a non-finite loss still shows in the epoch mean.
        self.train_acc = accuracy(num_classes)
        self.val_acc = accuracy(num_classes)
        self.test_acc = accuracy(num_classes)
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.val_loss = MeanMetric(nan_strategy="disable")
        self.test_loss = MeanMetric(nan_strategy="disable")
        self.val_acc_best = MaxMetric(nan_strategy="disable")
        # Drawn digits (data.drawn): validated and tested apart, as a second dataloader.
        self.val_drawn_acc = accuracy(num_classes)
        self.test_drawn_acc = accuracy(num_classes)
        self.val_drawn_loss = MeanMetric(nan_strategy="disable")
        self.test_drawn_loss = MeanMetric(nan_strategy="disable")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.network(features)

    def _shared_step(
        self, batch: Batch, loss_metric: MeanMetric, acc_metric: MulticlassAccuracy
    ) -> torch.Tensor:
        features, targets = batch
        logits = self(features)
        losses = F.cross_entropy(logits, targets, reduction="none")
        # One value per image, so that the epoch's mean counts every image once however
        # the batches are cut. (A batch mean with weight=batch size would do the same,
        # but MeanMetric drops the weight under nan_strategy="disable": torchmetrics#3434.)
        loss_metric.update(losses.detach())
        acc_metric.update(logits.detach(), targets)
        return losses.mean()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, self.train_loss, self.train_acc)

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if dataloader_idx == DRAWN:
            self._shared_step(batch, self.val_drawn_loss, self.val_drawn_acc)
        else:
            self._shared_step(batch, self.val_loss, self.val_acc)

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if dataloader_idx == DRAWN:
            self._shared_step(batch, self.test_drawn_loss, self.test_drawn_acc)
        else:
            self._shared_step(batch, self.test_loss, self.test_acc)

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        features = batch[0] if isinstance(batch, (tuple, list)) else batch
        probability, digit = self(features).softmax(dim=-1).max(dim=-1)
        return {"digit": digit, "probability": probability}

    def on_train_start(self) -> None:
        # The sanity check before training also runs validation: forget what it saw.
        self.val_acc_best.reset()

    def on_train_epoch_end(self) -> None:
        # One check per epoch (a step-level check would wait on the device every step).
        # It runs before the epoch's checkpoints are written, so none holds the
        # diverged weights.
        loss = self.train_loss.compute()
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training diverged: train/loss is {loss.item()} in epoch {self.current_epoch}"
                f" (model.lr={self.hparams.lr}); try a smaller learning rate"
            )
        self.log("train/loss", self.train_loss)
        self.log("train/acc", self.train_acc)

    def on_validation_epoch_end(self) -> None:
        self.log("val/loss", self.val_loss)
        self.log("val/acc", self.val_acc, prog_bar=True)
        self.val_acc_best.update(self.val_acc.compute())
        # A tensor, not the metric object, which Lightning would reset every epoch. Its
        # value is the same in every process; sync_dist says so to Lightning under DDP.
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)
        if self.val_drawn_acc.update_called:
            self.log("val/drawn_loss", self.val_drawn_loss)
            self.log("val/drawn_acc", self.val_drawn_acc, prog_bar=True)

    def on_test_epoch_end(self) -> None:
        self.log("test/loss", self.test_loss)
        self.log("test/acc", self.test_acc)
        if self.test_drawn_acc.update_called:
            self.log("test/drawn_loss", self.test_drawn_loss)
            self.log("test/drawn_acc", self.test_drawn_acc)

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
