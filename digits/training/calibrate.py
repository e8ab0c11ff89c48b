"""After training: fit the temperature and the "sure" threshold, and keep them.

``digits.calibration`` has the method. This runs it at the end of a fit, on the best
weights and the validation images (the data set's and, with drawn digits, the drawn
ones), before the test: the test then measures the calibrated model, beside what the
same weights gave before calibration. The two numbers go into the model's buffers and
into the run's best and last checkpoints, rewritten atomically.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from digits.calibration import TEMPERATURE, THRESHOLD, Calibration, calibrate
from digits.checkpoint_file import read_checkpoint, write_atomically


def logits_for(
    trainer: L.Trainer, model: L.LightningModule, features: torch.Tensor
) -> torch.Tensor:
    """The model's logits for a whole split at once, in the trainer's precision."""
    precision = trainer.precision_plugin
    was_training = model.training
    model.eval()
    with torch.no_grad(), precision.forward_context():
        logits = model(precision.convert_input(features.to(model.device))).float()
    model.train(was_training)
    return logits


def validation_logits(
    trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of every validation image, the drawn ones included."""
    sets = [datamodule.val_set, getattr(datamodule, "drawn_val_set", None)]
    sets = [dataset for dataset in sets if dataset is not None]
    logits = torch.cat([logits_for(trainer, model, dataset.features) for dataset in sets])
    labels = torch.cat([dataset.targets.to(logits.device) for dataset in sets])
    return logits, labels


def calibrate_run(
    trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule, best_path: str
) -> Calibration | None:
    """Calibrate the best weights (the model's own without a checkpoint) and keep the result.

    Every process computes the same numbers from the same images; the first writes them.
    """
    if getattr(datamodule, "val_set", None) is None:
        return None  # another data module, or validation switched off
    if best_path:
        model.load_state_dict(read_checkpoint(best_path)["state_dict"])
    logits, labels = validation_logits(trainer, model, datamodule)
    calibration = calibrate(logits, labels)
    getattr(model, TEMPERATURE).fill_(calibration.temperature)
    getattr(model, THRESHOLD).fill_(calibration.threshold)
    if trainer.is_global_zero:
        for path in {best_path, *_last_checkpoints(trainer)} - {""}:
            keep_in_checkpoint(Path(path), calibration)
    trainer.strategy.barrier()  # the test reads the best checkpoint next
    return calibration


def keep_in_checkpoint(path: Path, calibration: Calibration) -> None:
    checkpoint = read_checkpoint(path)
    checkpoint["state_dict"][TEMPERATURE] = torch.tensor(calibration.temperature)
    checkpoint["state_dict"][THRESHOLD] = torch.tensor(calibration.threshold)
    write_atomically(checkpoint, path)


def _last_checkpoints(trainer: L.Trainer) -> list[str]:
    """``last.ckpt`` and any other checkpoint the run's callbacks kept last."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    return [
        callback.last_model_path or callback.best_model_path
        for callback in trainer.callbacks
        if isinstance(callback, ModelCheckpoint) and callback.monitor is None
    ]
