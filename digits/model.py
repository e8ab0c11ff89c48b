"""Step 2, the model: how a network learns (``DigitsClassifier``).

The network itself is a plain ``nn.Module`` from ``digits.networks`` (the tutorial's
``MLP`` by default, or ``ConvNet``), named in the config by class path. Keeping it apart
from the ``LightningModule`` means it can be used, exported or replaced without
Lightning, and the LightningModule reads as the tutorial's loss + optimizer + metrics.
Everything else a run does (checkpoints, pictures, the summary, ...) is a callback in
``digits.training`` that this module does not use; a checkpoint written by an earlier
version is brought up to date when it loads (``digits.reading.checkpoint.upgrade``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MaxMetric, MetricCollection

from digits.metrics import class_labels, stage_metrics
from digits.networks import MLP, NetworkFactory, as_factory, describe
from digits.reading.checkpoint import upgrade

Batch = tuple[torch.Tensor, torch.Tensor]


class DigitsClassifier(L.LightningModule):
    """Cross-entropy, Adam and accuracy around a network.

    Metrics are updated every step and written once per epoch. Training logs them at the
    epoch's end: each ``self.log`` call costs about as much as a training step of this
    small network, and an epoch-level curve is what the user looks at anyway. Validation
    and test log them from their steps (a few an epoch), so that Lightning knows which loader
    each figure measures and its table lists it under that loader alone.

    Args:
        network: The network's class (with its own arguments in the config); it is
            built with the data's ``num_features`` and ``num_classes``.
        num_features: Inputs per sample; the CLI links it from the data module.
        num_classes: Output classes; the CLI links it from the data module.
        lr: Adam's learning rate (the tutorial's 1e-3); the peak of a schedule.
        weight_decay: Adam's L2 penalty.
        lr_schedule: ``constant`` (the tutorial), ``cosine`` (from ``lr`` down to 0 over
            the run) or ``onecycle`` (up to ``lr`` and down again), stepped every batch.
        eval_sets: Names of the data's further validation and test sets, in the order of
            its dataloaders after its own split; each is scored apart as
            ``val/<name>_acc``. The CLI links them from the data module.
    """

    def __init__(
        self,
        network: NetworkFactory = MLP,
        num_features: int = 64,
        num_classes: int = 10,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Literal["constant", "cosine", "onecycle"] = "constant",
        eval_sets: Sequence[str] = (),
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
        eval_sets = list(eval_sets)
        self.save_hyperparameters()
        self.network = factory(num_features, num_classes)
        # One collection per stage and evaluation set ("train" is a Module method).
        self.metrics = nn.ModuleDict({"fitting": stage_metrics("train/")})
        for stage in ("val", "test"):
            for index in range(1 + len(eval_sets)):
                self.metrics[self._key(stage, index)] = stage_metrics(self.prefix(stage, index))
        # The best val/acc so far, kept in the checkpoint (torchmetrics keeps a metric's
        # state out of the state dict unless told), so that a resumed run remembers it.
        self.val_acc_best = MaxMetric(nan_strategy="disable")
        self.val_acc_best.persistent(True)

    def prefix(self, stage: str, dataloader_idx: int = 0) -> str:
        """``val/`` for the data's own split, ``val/<name>_`` for a further set."""
        name = self.hparams.eval_sets[dataloader_idx - 1] + "_" if dataloader_idx else ""
        return f"{stage}/{name}"

    def validation_metric_names(self) -> list[str]:
        """What the model's validation logs every epoch: the names a checkpoint can monitor.

        ``val/acc_best`` is left out: it never falls, so it would keep the last epoch.
        """
        return [
            name
            for index in range(1 + len(self.hparams.eval_sets))
            for name in self.metrics[self._key("val", index)].keys()  # noqa: SIM118 (prefixed)
        ]

    @staticmethod
    def _key(stage: str, dataloader_idx: int) -> str:
        return f"{stage}{dataloader_idx}"

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.network(features)

    def _step(self, batch: Batch, metrics: MetricCollection) -> tuple[torch.Tensor, torch.Tensor]:
        features, targets = batch
        logits = self(features)
        # A target is a class index, or a distribution over the classes (cross_entropy
        # takes both). One loss per image, so that the epoch's mean counts every image
        # once however the batches are cut.
        losses = F.cross_entropy(logits, targets, reduction="none")
        metrics.update(value=losses.detach(), preds=logits.detach(), target=class_labels(targets))
        return losses.mean(), logits

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, self.metrics["fitting"])[0]

    def validation_step(
        self, batch: Batch, batch_idx: int, dataloader_idx: int = 0
    ) -> torch.Tensor:
        """Scores the batch; returns its logits, for callbacks that score them further."""
        return self._evaluation_step(batch, "val", dataloader_idx)

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self._evaluation_step(batch, "test", dataloader_idx)

    def _evaluation_step(self, batch: Batch, stage: str, dataloader_idx: int) -> torch.Tensor:
        metrics = self.metrics[self._key(stage, dataloader_idx)]
        logits = self._step(batch, metrics)[1]
        # The metric objects: Lightning computes them over the epoch, for this loader.
        for name, metric in metrics.items():
            prog_bar = stage == "val" and name.endswith("acc")
            self.log(name, metric, on_epoch=True, prog_bar=prog_bar, add_dataloader_idx=False)
        return logits.detach()

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        features = batch[0] if isinstance(batch, (tuple, list)) else batch
        logits = self(features)
        probability, digit = logits.softmax(dim=-1).max(dim=-1)
        return {"digit": digit, "probability": probability, "logits": logits}

    def setup(self, stage: str) -> None:
        """The data's further evaluation sets must be the ones this model scores."""
        given = getattr(self.trainer.datamodule, "eval_sets", None)
        if given is not None and list(given) != list(self.hparams.eval_sets):
            raise ValueError(
                f"the data has the evaluation sets {list(given)} but the model scores "
                f"{list(self.hparams.eval_sets)}: build it with eval_sets=data.eval_sets"
            )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        upgrade(checkpoint)  # a file written by an earlier version of this project

    def on_train_epoch_end(self) -> None:
        metrics = self.metrics["fitting"]
        if metrics["acc"].update_called:  # an epoch resumed at its end ran no step
            for name, metric in metrics.items():
                self.log(name, metric)

    def on_validation_epoch_end(self) -> None:
        own = self.metrics[self._key("val", 0)]
        # The best epoch so far is training's: not the sanity check's validation before
        # it, nor `validate`'s of a checkpoint.
        fitting = self.trainer.state.fn == TrainerFn.FITTING and not self.trainer.sanity_checking
        if fitting and own["acc"].update_called:
            self.val_acc_best.update(own["acc"].compute())
            # A tensor, not the metric object, which Lightning would reset every epoch. Its
            # value is the same in every process; sync_dist says so to Lightning under DDP.
            self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)

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
