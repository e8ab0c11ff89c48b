"""Training that diverged stops with one line naming the epoch, and keeps no broken model.

A learning rate far too large turns the loss into ``nan`` or ``inf`` within an epoch, and
every later step only trains a model that reads nothing. ``StopOnDivergence`` sums each
training batch's loss on the device (no wait for the device per step), and checks the
mean so far before each validation and when the epoch ends: before any checkpoint is
written (an epoch-end one, or the best after a validation within the epoch, with
``--trainer.val_check_interval`` below 1), so that none of them holds the diverged
weights. ``digits.errors`` turns the error into one line and exit code 3.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from digits.errors import NonFiniteLossError


class StopOnDivergence(L.Callback):
    """Raises ``NonFiniteLossError`` when an epoch's mean training loss so far is not finite,
    checked before each validation and at the epoch's end.

    Lightning's ``EarlyStopping(check_finite=True)`` would stop such a run as if it had
    finished, and keep its checkpoints; this one says why, and keeps none.
    """

    def __init__(self) -> None:
        self.loss_sum: torch.Tensor | None = None
        self.batches = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.loss_sum, self.batches = None, 0

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        loss = loss.detach()
        self.loss_sum = loss if self.loss_sum is None else self.loss_sum + loss
        self.batches += 1

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:  # (validate alone trains nothing, and stops below)
            self.check_the_mean_loss(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check_the_mean_loss(trainer, pl_module)

    def check_the_mean_loss(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # An epoch resumed after its last batch (a run stopped in its validation) trained
        # on nothing here: an empty epoch is not a divergence.
        trained = trainer.strategy.reduce_boolean_decision(self.batches > 0, all=False)
        if not trained:
            return
        mean = (
            self.loss_sum / self.batches
            if self.loss_sum is not None
            else torch.zeros((), device=pl_module.device)
        )
        # The same value in every process (a nan anywhere is a nan everywhere), so that
        # all of them stop together under DDP.
        mean = trainer.strategy.reduce(mean.float(), reduce_op="mean")
        if not torch.isfinite(mean):
            # The flag to change, where the model has one (this project's does).
            learning_rate = pl_module.hparams.get("lr", trainer.optimizers[0].param_groups[0]["lr"])
            raise NonFiniteLossError(
                f"training diverged: train/loss is {mean.item()} in epoch "
                f"{trainer.current_epoch} (model.lr={learning_rate}); try a smaller learning rate"
            )
