"""The one place where this project relies on Lightning's and TensorBoard's internals.

Each is used because no public hook does the job, and each has a test in
``tests/test_lightning_internals.py`` that fails if the library changes what is relied
on, so that an upgrade shows where to look instead of changing a run in a subtle way.

- ``LightningCLI._parse_ckpt_path`` (Lightning): with ``--ckpt_path``, LightningCLI
  reads the checkpoint's model hyperparameters with ``torch.load`` and lets them override
  the parsed config, silently. ``DigitsCLI.parse_arguments`` has already read the file
  (safely, upgraded from earlier versions) and adopted its settings where the user kept
  the defaults, refusing a contradiction (``digits.training.resume``), so
  ``CheckpointReadOnce`` skips the second reading, which fails on a setting an earlier
  version kept in the model.
- ``UnrepeatedDistributedSampler`` (``lightning.pytorch.overrides.distributed``): under
  DDP each evaluation image is scored by exactly one process, where the default
  ``DistributedSampler`` repeats images to even out the shares.
- ``Trainer.fit_loop.epoch_progress`` (Lightning's loop progress counters): whether the
  epoch whose checkpoints are being written has finished its batches
  (``epoch_ended``), which tells an epoch-end checkpoint from a mid-epoch one; and
  ``Trainer.fit_loop.total_batch_idx``: how many training batches came before the one
  being moved to the device (``training_batches_before``), which seeds its random
  changes: the optimizer step would give the batches of one step the same ones.
- ``ModelCheckpoint.check_monitor_top_k``, ``best_k_models`` and
  ``kth_best_model_path`` (Lightning, undocumented): ``TiesToTheLaterEpoch`` saves an
  epoch whose score ties the kept one, where Lightning keeps the first, and reads
  ``best_model_path`` as the latest of the tied files in ``best_k_models``, which holds
  them in the order they were saved.
- Lightning's SIGTERM handler, installed when a fit starts and before
  ``on_train_start``: ``digits.training.interrupt`` replaces it (and Python's SIGINT
  handler) from ``on_train_start`` to the end of training, with ``signal.signal``; and
  Lightning's answer to ``KeyboardInterrupt``, which ignores Ctrl-C before it calls the
  callbacks' ``on_exception``, where ``interrupt`` saves the state and leaves it ignored.
- ``EventAccumulator`` (TensorBoard's event-file reader, which TensorBoard itself uses):
  which steps of which scalars a run's event files hold (``scalar_events``).
- ``SummaryWriter.file_writer`` (torch): a summary built elsewhere written into the
  run's own event file (``write_summaries``); ``add_hparams`` would start another run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import Dataset

__all__ = [
    "CheckpointReadOnce",
    "TiesToTheLaterEpoch",
    "epoch_ended",
    "evaluation_sampler",
    "scalar_events",
    "training_batches_before",
    "write_summaries",
]


class CheckpointReadOnce(LightningCLI):
    """LightningCLI that leaves reading the checkpoint's settings to the project."""

    def _parse_ckpt_path(self) -> None:
        """Done by ``DigitsCLI.parse_arguments`` (``read_and_adopt``), before this would run."""


class TiesToTheLaterEpoch(ModelCheckpoint):
    """``ModelCheckpoint`` that also saves an epoch whose score equals the kept one's, and
    names the latest of the kept files with the best score as the best."""

    # Lightning names as best the first of them (``max`` over ``best_k_models``, which
    # holds the files in the order they were saved). Read here, the best is the latest,
    # for every reader: the test of "best", the file's own state, the summary, and with
    # ``save_top_k`` above 1 too.
    @property
    def best_model_path(self) -> str:
        chosen = self._best_model_path
        kept = self.best_k_models
        if chosen not in kept:
            return chosen  # nothing kept yet, or an earlier folder's best reloaded alone
        tied = [path for path, score in kept.items() if score == kept[chosen]]
        return tied[-1]

    @best_model_path.setter
    def best_model_path(self, path: str) -> None:
        self._best_model_path = path

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        if current is None or len(self.best_k_models) < self.save_top_k or self.save_top_k < 0:
            return super().check_monitor_top_k(trainer, current)
        kth_score = self.best_k_models[self.kth_best_model_path]
        ties = trainer.strategy.reduce_boolean_decision(bool(current == kth_score))
        return ties or super().check_monitor_top_k(trainer, current)


def evaluation_sampler(dataset: Dataset, trainer: L.Trainer) -> UnrepeatedDistributedSampler:
    """This process's share of an evaluation set, every image in exactly one share."""
    return UnrepeatedDistributedSampler(
        dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
    )


def epoch_ended(trainer: L.Trainer) -> bool:
    """Whether the current training epoch ran its last batch but is not yet counted done.

    That is where its end-of-epoch checkpoints are written; a checkpoint written in the
    middle of an epoch (Ctrl-C) has both counts equal.
    """
    progress = trainer.fit_loop.epoch_progress.current
    return progress.processed != progress.completed


def training_batches_before(trainer: L.Trainer) -> int:
    """The training batches of the run before the one being moved to the device.

    Counted across epochs and kept in the checkpoint's loop state, so a resumed run goes
    on counting. Lightning counts a batch as ready once it is on the device, so in
    ``on_after_batch_transfer`` the batch being moved is not counted yet. Without
    gradient accumulation it equals ``global_step``.
    """
    return trainer.fit_loop.total_batch_idx + 1


def scalar_events(log_dir: str | Path) -> dict[str, list[Any]]:
    """Every scalar in a run's event files: tag -> events (``.step``, ``.value``, ...)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # Every point the files hold: by default the reader takes a resumed run's first step
    # after the earlier run's test for a restart, and drops (and warns about) what follows.
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0}, purge_orphaned_data=False)
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


def write_summaries(writer: Any, summaries: Iterable[Any]) -> None:
    """Adds ready-made summaries to a ``SummaryWriter``'s own event file.

    ``SummaryWriter`` has no documented method for a summary built elsewhere. Lightning's
    own ``log_hyperparams`` reaches the private ``_get_file_writer()``; this uses the
    ``file_writer`` attribute that method fills, set while the writer is open.
    """
    for summary in summaries:
        writer.file_writer.add_summary(summary)
