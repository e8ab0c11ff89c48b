"""Checkpoints during training: written safely, the latest best epoch kept.

- ``SafeCheckpointIO`` is Lightning's checkpoint writer and reader for every run: it
  writes through ``digits.reading.checkpoint.write_atomically`` (a crash mid-write leaves
  the previous file) and reads with ``weights_only=True`` (a file cannot run code).
- ``FindKeptCheckpoints`` lets the checkpoint callbacks of a run resumed in place by
  another path to its folder still know the files they kept.
- ``LatestBestCheckpoint`` keeps the best epoch, preferring the latest among ties; which
  way is better follows the monitored metric unless ``mode`` says it.
- ``this_runs_best`` and ``last_checkpoints``: the files this run kept, for what tests or
  fits on them once training ends.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from digits.reading.checkpoint import read_checkpoint, write_atomically
from digits.training.lightning_internals import TiesToTheLaterEpoch


class SafeCheckpointIO(TorchCheckpointIO):
    """Write then rename; never unpickle arbitrary objects."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        write_atomically(checkpoint, path)

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location)


class FindKeptCheckpoints(L.Callback):
    """A run resumed in place finds the checkpoints it kept, whatever path it is resumed by.

    Lightning reloads a checkpoint callback's kept files (its best epochs and scores, its
    last file) only when the callback's folder is written exactly as when they were
    saved: it compares the two as text. A run resumed from another working folder, or by
    an absolute path where it wrote a relative one, would forget them, save its first
    epoch as the best however poor it is, and leave the earlier best behind (and write
    ``last-v1.ckpt`` beside ``last.ckpt``). When the checkpoint resumed lies in a checkpoint
    callback's own folder, the run continues there, and the files that callback's state
    names are read as that folder's, before it loads the state (Lightning calls every
    callback's ``on_load_checkpoint`` first). The states keep their keys, so checkpoints of
    every earlier version resume alike.
    """

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        resumed, states = trainer.ckpt_path, checkpoint.get("callbacks") or {}
        if resumed is None:
            return
        for callback in trainer.checkpoint_callbacks:
            state = states.get(callback.state_key)
            folder = getattr(callback, "dirpath", None)
            if state is None or folder is None:
                continue
            if Path(resumed).resolve().parent == Path(folder).resolve():
                states[callback.state_key] = in_folder(state, folder)


def in_folder(state: dict[str, Any], folder: str) -> dict[str, Any]:
    """A checkpoint callback's state with its files named as ``folder``'s, in their order."""

    def moved(path: str) -> str:
        return os.path.join(folder, Path(path).name) if path else path

    state = {**state, "dirpath": folder}
    for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
        if key in state:
            state[key] = moved(state[key])
    if "best_k_models" in state:
        state["best_k_models"] = {
            moved(path): score for path, score in state["best_k_models"].items()
        }
    return state


class LatestBestCheckpoint(TiesToTheLaterEpoch):
    """``ModelCheckpoint`` that, among epochs with equal scores, keeps the latest.

    Accuracy on a validation split of 135 images moves in steps of 0.74%, so many
    epochs tie. Lightning keeps the first of them, usually a model that has trained
    for fewer epochs; the validation split cannot tell them apart, the test split can.

    ``mode`` left out follows the metric, so that ``--checkpoint.monitor val/loss`` alone
    keeps the lowest loss: accuracies are maximised, losses minimised. Lightning's own
    default, ``"min"``, would keep the worst accuracy.
    """

    def __init__(
        self,
        monitor: str | None = None,
        mode: Literal["min", "max"] | None = None,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            monitor: The metric that chooses the kept epoch, one that validation logs.
            mode: ``max`` or ``min``; null follows the metric: ``max`` for an accuracy,
                ``min`` for a loss or a calibration error.
            kwargs: The rest of ``ModelCheckpoint``'s arguments.
        """
        super().__init__(monitor=monitor, mode=mode or better_direction(monitor), **kwargs)


def better_direction(monitor: str | None) -> Literal["min", "max"]:
    """Which way a metric this project logs improves: ``max`` for accuracies, else ``min``.

    Validation logs accuracies, losses and calibration errors (the CLI refuses a monitor
    it does not log); ``min`` is also Lightning's default, and unused where nothing is
    monitored.
    """
    name = (monitor or "").rsplit("/", 1)[-1]
    return "max" if name.endswith("acc") else "min"


def this_runs_best(trainer: L.Trainer) -> str:
    """The best checkpoint this run saved, or ``""`` for none.

    A run trained on from an earlier run's checkpoint in a new folder reloads that run's
    best path into its callback; until it saves a best of its own (never, without
    validation), that path is the other run's file, which it must not test or touch.
    """
    checkpoint = trainer.checkpoint_callback
    if checkpoint is None or not written_by(checkpoint, checkpoint.best_model_path):
        return ""
    return checkpoint.best_model_path


def last_checkpoints(trainer: L.Trainer) -> list[str]:
    """``last.ckpt`` and any other checkpoint the run's callbacks kept last, in their folder."""
    kept = [
        (callback, callback.last_model_path or callback.best_model_path)
        for callback in trainer.checkpoint_callbacks
        if callback.monitor is None
    ]
    return [path for callback, path in kept if written_by(callback, path)]


def written_by(callback: ModelCheckpoint, path: str) -> bool:
    """Whether ``path`` is in the callback's own folder (and so was saved by this run)."""
    return bool(path) and Path(path).resolve().parent == Path(callback.dirpath).resolve()
