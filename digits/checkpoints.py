"""Checkpoints that survive crashes, load safely and say clearly when they cannot.

- ``SafeCheckpointIO`` writes each checkpoint to a temporary file and renames it into
  place, so a crash in the middle of a write leaves the previous checkpoint readable
  (Lightning's own ``_atomic_save`` writes the final file in place), and loads with
  ``weights_only=True``, so a checkpoint file cannot run code when it is opened.
- ``read_checkpoint`` is the same safe load for the command line, turning every way a
  file can be wrong into a one-line ``ValueError``.
- ``LatestBestCheckpoint`` keeps the best epoch, preferring the latest among ties.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO


class SafeCheckpointIO(TorchCheckpointIO):
    """Write then rename; never unpickle arbitrary objects."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # The temporary file sits beside the target so that the rename stays on one
        # file system, where os.replace is atomic.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location)


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a Lightning checkpoint with ``weights_only=True``, or explain in one line why not."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"checkpoint not found: {file}")
    try:
        checkpoint = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as error:
        message = str(error)
        if "GLOBAL" in message:  # weights_only met a class or function to import
            raise ValueError(
                f"refusing to load {file}: it names Python objects to import, which could "
                "run code when unpickled; only tensors and plain values are loaded"
            ) from None
        raise ValueError(
            f"{file} is not a readable checkpoint (truncated or corrupt? "
            f"{type(error).__name__}: {_last_words(message)})"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{file} is not a Lightning checkpoint (no state_dict in it)")
    return checkpoint


def _last_words(message: str) -> str:
    """The most specific line of torch's multi-paragraph explanation."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    specific = [line for line in lines if "operand" in line or "Errno" in line]
    return (specific or lines or ["no detail"])[0][:80]


class LatestBestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that, among epochs with equal scores, keeps the latest.

    Accuracy on a validation split of 135 images moves in steps of 0.74%, so many
    epochs tie. Lightning keeps the first of them, usually a model that has trained
    for fewer epochs; the validation split cannot tell them apart, the test split can.
    """

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        if current is None or len(self.best_k_models) < self.save_top_k or self.save_top_k < 0:
            return super().check_monitor_top_k(trainer, current)
        kth_score = self.best_k_models[self.kth_best_model_path]
        ties = trainer.strategy.reduce_boolean_decision(bool(current == kth_score))
        return ties or super().check_monitor_top_k(trainer, current)


def load_for_inference(ckpt_path: str | os.PathLike) -> tuple[L.LightningModule, Any]:
    """The trained model (in eval mode, on the CPU) and the data module it was trained with.

    The data module matters for inference: it knows the split and the input scaling
    (``scale_images``) that the model expects.
    """
    from digits.data import DigitsDataModule
    from digits.model import DigitsClassifier

    read_checkpoint(ckpt_path)  # one-line errors for missing, corrupt or unsafe files
    model = DigitsClassifier.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    model.eval()
    datamodule = DigitsDataModule.load_from_checkpoint(ckpt_path, weights_only=True)
    return model, datamodule
