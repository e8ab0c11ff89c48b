"""Not sure of what is unlike every training digit: ``DeclineUnfamiliar``, a callback.

Outlier exposure (``digits.people.non_digits``) teaches the network to doubt the kinds
of non-digit it was shown; a kind it never saw may still get one digit's whole
probability. This callback adds a second test that needs no example of what to decline
(``digits.reading.familiar``): a reading is sure only if the image also lies as near its
``neighbour``-th nearest training digit as all but ``share`` of each validation set's
digits do. What the run trained on decides what is familiar, so it is fitted once
training ends, for each checkpoint the run keeps on that checkpoint's own weights, and
kept in them beside the temperature and threshold: the training digits (as the network's
inputs, each once) and the cut-off distance. Every reader of a checkpoint applies it
(``digits.predict``, the page, ``digits.drawn``, and ``predict`` here, through the
``familiar`` entry of the readings that ``Calibrate`` honours). The model knows nothing
of it; a config lists it under ``trainer.callbacks`` (``configs/best.yaml``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import move_data_to_device, rank_zero_warn
from torch.utils.hooks import RemovableHandle

from digits.metrics import NO_CLASS, class_labels
from digits.reading.familiar import (
    FAMILIARITY_STATE,
    Familiarity,
    catch_features,
    features_in_chunks,
    neighbour_distances,
)
from digits.training.calibrate import (
    each_kept_checkpoint,
    every_batch,
    keep_state_in,
    loader_list,
    logits_for,
)
from digits.training.tensorboard import rank_zero_tensorboard


class DeclineUnfamiliar(L.Callback):
    """Answers "not sure" for images farther from the training digits than validation's.

    Args:
        share: Each validation set may lose at most this share of its digits to the test;
            the cut-off is the distance that keeps the rest of every set (chosen on
            validation: docs/sure.md).
        neighbour: Which nearest training digit the distance is measured to (the k of
            k nearest neighbours): the 10th, not the 1st, so that one stray training image
            does not make its surroundings familiar.
    """

    def __init__(self, share: float = 0.02, neighbour: int = 10) -> None:
        if not 0 <= share < 1:
            raise ValueError(f"DeclineUnfamiliar.share must be 0 to 1, got {share}")
        if neighbour < 1:
            raise ValueError(f"DeclineUnfamiliar.neighbour must be at least 1, got {neighbour}")
        self.share = share  # for the next fit; what a checkpoint holds was fitted with its own
        self.neighbour = neighbour
        self.fitted: dict[str, Any] | None = None  # the state kept: share, neighbour, cutoff, bank
        self.familiarity: Familiarity | None = None  # for predicting, built from it
        self.seen: dict[str, torch.Tensor] = {}
        self.hook: RemovableHandle | None = None
        self.fitted_share: float | None = None  # of the validation digits found familiar

    @property
    def state_key(self) -> str:
        return FAMILIARITY_STATE  # the tools look for it under this name

    def state_dict(self) -> dict[str, Any]:
        if self.fitted is not None:
            return dict(self.fitted)
        return {
            "share": self.share,
            "neighbour": self.neighbour,
            "cutoff": None,
            "bank_inputs": None,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """A checkpoint's fit, with the share and neighbour it was fitted with (which the
        reading uses, whatever this callback was given for its next fit)."""
        fitted = state_dict.get("bank_inputs") is not None
        self.fitted = dict(state_dict) if fitted else None
        self.familiarity = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Training changes the weights and so every distance: fitted again at the end.
        self.fitted, self.familiarity, self.fitted_share = None, None, None

    # Fitting, once training ends.

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Each checkpoint the run kept gets the cut-off of its own weights, best last."""
        validation = loader_list(trainer.val_dataloaders)
        training = loader_list(trainer.train_dataloader)
        if trainer.fast_dev_run or not validation or not training:
            return
        bank_inputs = training_digits(training[0], pl_module.device).half()
        sets = [inputs for inputs in validation_digits(validation, pl_module.device) if len(inputs)]
        if len(bank_inputs) < self.neighbour or not sets:
            rank_zero_warn(
                f"DeclineUnfamiliar declines nothing: it needs {self.neighbour} training digits "
                f"and a validation set of digits, and has {len(bank_inputs)} and {len(sets)}"
            )
            return
        for path in each_kept_checkpoint(trainer, pl_module):
            bank = self.features(trainer, pl_module, bank_inputs.float())
            distances = [
                neighbour_distances(self.features(trainer, pl_module, inputs), bank, self.neighbour)
                for inputs in sets
            ]
            # The higher of the two values around the quantile: no set loses more than share.
            cutoff = max(
                float(torch.quantile(d, 1 - self.share, interpolation="higher")) for d in distances
            )
            self.fitted = {
                "share": self.share,
                "neighbour": self.neighbour,
                "cutoff": cutoff,
                "bank_inputs": bank_inputs.cpu(),
            }
            self.fitted_share = float((torch.cat(distances) <= cutoff).float().mean())
            if path and trainer.is_global_zero:
                keep_state_in(Path(path), self.state_key, self.state_dict())
        logger = rank_zero_tensorboard(trainer)
        if logger is not None:
            scalars = {"familiar/cutoff": cutoff, "familiar/val_share": self.fitted_share}
            logger.log_metrics(scalars, trainer.global_step)
        trainer.strategy.barrier()  # the test reads the best checkpoint next

    def summary_lines(self) -> list[str]:
        """For the run's summary: what the fitted cut-off declines on validation."""
        if self.fitted is None or self.fitted_share is None:
            return []
        count, neighbour = len(self.fitted["bank_inputs"]), self.fitted["neighbour"]
        return [
            f"unfamiliar    farther than {self.fitted['cutoff']:.4f} from the "
            f"{ordinal(neighbour)} nearest of {count} training digits: "
            f"{1 - self.fitted_share:.1%} of the validation digits, never sure"
        ]

    @staticmethod
    def features(
        trainer: L.Trainer, pl_module: L.LightningModule, inputs: torch.Tensor
    ) -> torch.Tensor:
        """Unit-length features in the trainer's precision, as the model reads in it."""
        return features_in_chunks(pl_module, inputs, partial(logits_for, trainer, pl_module))

    # Predicting: the network's features of each batch, and whether each image is familiar.

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.remove_hook()
        if self.fitted is None:
            return  # a checkpoint without it: nothing is declined
        self.familiarity = Familiarity.from_state(
            self.fitted, pl_module, partial(logits_for, trainer, pl_module)
        )
        self.hook = catch_features(pl_module, self.seen)

    def on_predict_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Adds ``familiar`` to the readings, and takes it out of ``sure`` if ``Calibrate``
        set that already; listed after this callback, ``Calibrate`` does so itself."""
        if self.familiarity is None or not isinstance(outputs, dict):
            return
        familiar = self.familiarity.familiar(self.seen.pop("features"))
        outputs["familiar"] = familiar
        if "sure" in outputs:
            outputs["sure"] = outputs["sure"] & familiar

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.remove_hook()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self.remove_hook()  # predict stopped by an error: the model must not keep the hook

    def remove_hook(self) -> None:
        if self.hook is not None:
            self.hook.remove()
            self.hook = None
        self.seen.clear()


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st."""
    if number % 100 in (11, 12, 13):
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


def training_digits(loader: Any, device: torch.device) -> torch.Tensor:
    """The training split's digits as the network's inputs, each once: no repeats, no
    augmentation (a transform changes batches on their way to the device, not the data
    set)."""
    return torch.unique(digits_of(loader, device), dim=0)


def validation_digits(loaders: list[Any], device: torch.device) -> list[torch.Tensor]:
    """Each validation set's digits as the network's inputs."""
    return [digits_of(loader, device) for loader in loaders]


def digits_of(loader: Any, device: torch.device) -> torch.Tensor:
    """The loader's images that have a class (not a non-digit's spread target), in order."""
    kept = []
    for batch in every_batch(loader):
        inputs, targets = move_data_to_device(batch, device)
        kept.append(inputs[class_labels(targets) != NO_CLASS])
    return torch.cat(kept)
