"""Ctrl-C and SIGTERM: stop training between two batches, in every process at once.

Lightning raises ``KeyboardInterrupt`` wherever Python is when Ctrl-C arrives, and its
SIGTERM handler forwards the signal and calls a collective from inside the handler.
Under DDP either can leave one process waiting in a collective that another process
never joins (Lightning-AI/pytorch-lightning#20806), and a run then hangs instead of
stopping. So while training runs, the signal is only noted; after each training batch
the processes agree (one all-reduce of a flag, under DDP only) whether any of them
received one, and all of them stop at that same batch. The state is then saved as
``interrupted.ckpt``, once, and the resume command is printed, once. The flag travels in
a CPU (gloo) process group, one of its own where the run's is NCCL: on GPUs, reading a
flag all-reduced on the GPU after every batch would make the host wait for the batch's
work to finish.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.utilities.exceptions import SIGTERMException

from digits.reading.checkpoint import read_checkpoint
from digits.training.folders import (
    INTERRUPTED_CHECKPOINT,
    LAST_CHECKPOINT,
    continues_its_run,
    run_log_dir,
)
from digits.training.resume import resume_command, saved_config

SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and what Slurm and Kubernetes send


class InterruptCheckpoint(L.Callback):
    """On Ctrl-C or SIGTERM, stops at the next batch and saves ``interrupted.ckpt``.

    The run's ``last.ckpt`` (the end of the last complete epoch) stays as it was: that
    is the one to resume from for the same result as an uninterrupted run. This one
    keeps the part of an epoch that was done. A signal during an epoch's last batch or
    its validation stops the run after the next epoch's first batch, so that no epoch is
    left with its training done and its validation missing. Where an epoch is one batch
    (its first is also its last), the run stops as the next epoch starts instead, and
    saves nothing more: its state is then the end of the last epoch, ``last.ckpt``'s (a
    file saved there would resume past the next epoch, which Lightning would count as
    done). A second Ctrl-C before then stops at once; while the state is saved, Ctrl-C
    stays ignored, as Lightning sets it. Other exceptions save nothing, so a diverged
    model is not kept as a result.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.as_an_epoch_started = False  # stopped before its first batch: nothing to save
        self.log_dir: Path | None = None
        self._previous: dict[int, Any] = {}
        self.flag_group: dist.ProcessGroup | None = None  # under DDP; None: the default, gloo

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Asked here, where every process asks it: under DDP it is a collective call.
        log_dir = run_log_dir(trainer)
        self.log_dir = Path(log_dir) if log_dir else None
        self._close_flag_group()  # one a fit that raised left open
        if stage == "fit" and trainer.world_size > 1 and dist.get_backend() != "gloo":
            self.flag_group = dist.new_group(backend="gloo")  # every process, in turn

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._close_flag_group()

    def _close_flag_group(self) -> None:
        if self.flag_group is not None:
            dist.destroy_process_group(self.flag_group)
        self.flag_group = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.received, self.as_an_epoch_started = None, False
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._note) for number in SIGNALS}

    def _note(self, number: int, frame: FrameType | None) -> None:
        if self.received == signal.SIGINT and number == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: the user does not want to wait
        self.received = number

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if batch_idx + 1 < trainer.num_training_batches:
            self._stop_if_asked(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.num_training_batches == 1:  # the same in every process
            self.as_an_epoch_started = True
            self._stop_if_asked(trainer)  # a signal during the last epoch or its validation
            self.as_an_epoch_started = False

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_if_asked(trainer)  # a signal during the very last batch or validation
        self._restore()

    def _stop_if_asked(self, trainer: L.Trainer) -> None:
        if not self._received_anywhere(trainer):
            return
        # In a process that received nothing itself, another one received SIGTERM.
        if self.received == signal.SIGINT:
            raise KeyboardInterrupt
        raise SIGTERMException

    def _received_anywhere(self, trainer: L.Trainer) -> bool:
        """Whether this or any other process has received a signal (the same answer in all)."""
        received = self.received is not None
        if trainer.world_size == 1:
            return received
        flag = torch.tensor(int(received))  # on the CPU: the host waits for no GPU work
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.flag_group)
        return bool(flag)

    def _restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, KeyboardInterrupt):
            # Lightning ignores Ctrl-C while it shuts down, from just before this hook:
            # a second one must not stop the save below halfway.
            self._previous.pop(signal.SIGINT, None)
        self._restore()
        self._close_flag_group()  # Lightning calls no teardown after an exception
        checkpoint = trainer.checkpoint_callback
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or not checkpoint:
            return
        if checkpoint.dirpath is None:
            return
        saved = Path(checkpoint.dirpath) / INTERRUPTED_CHECKPOINT
        if not self.as_an_epoch_started:
            # Every process takes part (under DDP it waits for the others); rank 0 writes.
            trainer.save_checkpoint(saved, weights_only=False)
        if not trainer.is_global_zero or self.log_dir is None:
            return
        last = Path(checkpoint.dirpath) / LAST_CHECKPOINT
        config = saved_config(trainer, self.log_dir)
        name = "Ctrl-C" if isinstance(exception, KeyboardInterrupt) else "SIGTERM"
        if self.as_an_epoch_started:
            stopped = f"Stopped by {name} as epoch {trainer.current_epoch} started"
            if not last.exists():
                print(f"\n{stopped}, with no checkpoint saved yet.", file=sys.stderr, flush=True)
                return
            state, resume_from, how = last, last, "from the end of the last epoch"
        else:
            stopped = f"Stopped by {name} in epoch {trainer.current_epoch}"
            state, resume_from, how = saved, saved, "from there"
            # A best saved by a validation within this epoch is later than last.ckpt:
            # resumed from last.ckpt, the run would go to a new folder.
            if last.exists() and continues_its_run(read_checkpoint(last), last):
                resume_from = last
                how = "from the end of the last complete epoch, as an uninterrupted run would go on"
        print(
            f"\n{stopped}; the state so far is in {state}.\nTo resume {how}:\n  "
            f"{resume_command(config, resume_from)}",
            file=sys.stderr,
            flush=True,
        )
