"""Where a run writes: a folder of its own, or the folder of the run it continues.

Every run gets ``<save_dir>/<name>/version_N/`` from its logger, with nothing shared
with an earlier run. Without a logger (``--trainer.logger false``) Lightning would write
checkpoints and ``config.yaml`` straight into the working folder, so that a second run
there would collide with the first; such a run gets the next ``version_N`` folder too,
as the trainer's root folder (its ``config.yaml`` says so, and run again it puts the
next run beside it, not inside). A run resumed from a checkpoint inside
``<save_dir>/<name>/version_N/checkpoints/`` continues in that same folder: its curves
carry on (steps logged after the checkpoint are purged, so that nothing appears twice)
and its checkpoint callbacks reload their best score. That is only for the run's latest
state (``last.ckpt``, or ``interrupted.ckpt`` after it): training on from an earlier
checkpoint, the best epoch of a run that went on, is a run of its own in a new folder,
so that the earlier run's later checkpoints and curves stay as they were.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

import lightning as L
from jsonargparse import Namespace
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from digits.reading.checkpoint import read_checkpoint

INTERRUPTED_CHECKPOINT = "interrupted.ckpt"  # saved inside an epoch, after its epoch-end ones
LAST_CHECKPOINT = "last.ckpt"  # the end of the run's latest epoch (the CLI's last_checkpoint)


def run_log_dir(trainer: L.Trainer) -> str | None:
    """The run's own folder: where its ``config.yaml`` goes, and the one its summary names.

    Lightning's ``trainer.log_dir`` is that for TensorBoard's and the CSV logger (their
    ``version_N``) and without a logger; for any other logger it is the logger's
    ``save_dir``, which every run shares (MLflow's ``./mlruns``). The run's folder is then
    the one its checkpoints go in, ``save_dir/name/version``, as ``ModelCheckpoint`` names
    it. ``fast_dev_run`` writes nothing, and has none. Every process must call it: under
    DDP it is a collective call.
    """
    logger = trainer.logger
    if logger is None or trainer.fast_dev_run or isinstance(logger, (TensorBoardLogger, CSVLogger)):
        return trainer.log_dir
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    folder = os.path.join(logger.save_dir or trainer.default_root_dir, str(logger.name), version)
    return trainer.strategy.broadcast(folder)


def run_folder(ckpt_path: str | Path) -> Path | None:
    """``<save_dir>/<name>/version_N`` when the checkpoint lies in a run's checkpoints/."""
    folder = Path(ckpt_path).parent
    if folder.name == "checkpoints" and folder.parent.name.startswith("version_"):
        return folder.parent  # as the user wrote it: Lightning compares these paths as text
    return None


def resumed_in_place(ckpt_path: str | Path | None, log_dir: str | Path) -> bool:
    """Whether a run from ``ckpt_path`` continues an earlier run in that run's folder.

    Such a run already wrote what a run writes once (the HPARAMS declaration, the
    sample inputs) when it first started. Takes the logger's ``log_dir``, not the
    trainer's, which under DDP is a collective call that every process must make.
    """
    run = run_folder(ckpt_path) if ckpt_path else None
    return run is not None and run.resolve() == Path(log_dir).resolve()


def continues_its_run(checkpoint: dict[str, Any], ckpt_path: str | Path) -> bool:
    """Whether ``checkpoint`` (read from ``ckpt_path``) is the latest state of a run's folder.

    That is: it lies in a run's ``checkpoints/`` and none of that run's epoch-end
    checkpoints is later. ``interrupted.ckpt`` is left out, so that ``last.ckpt`` resumes
    an interrupted run in place, as the resume command says (unless a validation within
    the epoch it was stopped in saved a best after it; the command then names
    ``interrupted.ckpt``).
    """
    run = run_folder(ckpt_path)
    if run is None or "global_step" not in checkpoint:
        return False
    steps = []
    given = Path(ckpt_path).resolve()
    for path in (run / "checkpoints").glob("*.ckpt"):
        if path.name == INTERRUPTED_CHECKPOINT or path.resolve() == given:
            continue  # the given one is read already
        try:
            steps.append(int(read_checkpoint(path).get("global_step", 0)))
        except (ValueError, OSError):
            continue  # not a checkpoint of the run's (an export), or gone meanwhile
    return int(checkpoint["global_step"]) >= max(steps, default=0)


def is_a_run_folder(folder: Path) -> bool:
    """Whether a folder is a run's ``version_N``: the one a logger-less run's config names."""
    return folder.name.startswith("version_") and (folder / "config.yaml").is_file()


def next_version(root: Path) -> Path:
    """``root/version_N`` for the first N above every existing one, as Lightning's loggers count."""
    taken = [
        int(path.name.removeprefix("version_"))
        for path in root.glob("version_*")
        if path.is_dir() and path.name.removeprefix("version_").isdigit()
    ]
    return root / f"version_{max(taken, default=-1) + 1}"


Placement = Literal["continues", "after_an_earlier_state", "new"]


def place_run(
    trainer: Namespace, checkpoint: dict[str, Any] | None, ckpt_path: str | None, root: Path
) -> Placement:
    """Point the parsed trainer config at this run's folder (before anything is built).

    ``root`` is where runs without a logger go when no ``default_root_dir`` is given.
    Returns whether the run ``continues`` in the folder of the run it resumes, goes to a
    new folder because it trains on from an earlier state than that run's latest
    (``after_an_earlier_state``), or is simply ``new``.
    """
    resumed = run_folder(ckpt_path) if checkpoint is not None and ckpt_path else None
    if resumed is not None and not continues_its_run(checkpoint, ckpt_path):
        resumed, new = None, "after_an_earlier_state"
    else:
        new = "new"
    logger = trainer.logger
    if logger is False:
        base = Path(trainer.default_root_dir) if trainer.default_root_dir else root
        if is_a_run_folder(base):
            base = base.parent  # a logger-less run's own config.yaml, run again
        trainer.default_root_dir = str(resumed or next_version(base))
        return "continues" if resumed is not None else new
    if not isinstance(logger, Namespace):
        return new
    if resumed is None:
        _refuse_a_taken_folder(logger)
        return new
    # TensorBoard's event files can be continued; other loggers' files (a CSV logger's
    # metrics.csv) could be rewritten, so their resumed runs get a new folder.
    if not str(logger.get("class_path", "")).endswith(".TensorBoardLogger"):
        return "new"
    settings = logger.init_args
    configured = Path(settings.save_dir) / str(settings.name)
    if configured.resolve() != resumed.parent.resolve():
        settings.save_dir = str(resumed.parent.parent)
        settings.name = resumed.parent.name
    settings.version = resumed.name
    # Steps logged after the checkpoint was written are hidden, so that the epochs the
    # resumed run repeats appear once.
    settings.purge_step = int(checkpoint["global_step"])
    wait_to_write_after(resumed)
    return "continues"


def wait_to_write_after(run: Path) -> None:
    """Wait, if need be, until a new event file's name sorts after the run's last one.

    TensorBoard reads a run's event files in name order, and a name begins with the
    second its writer started, then the process id. A run resumed within the same second
    as the one it continues (a short run killed at once) would sort by process id, and
    its epochs could come before the earlier ones.
    """
    started = [
        int(stamp)
        for path in run.glob("events.out.tfevents.*")
        if (stamp := path.name.split(".")[3]).isdigit()
    ]
    while started and time.time() < max(started) + 1:
        time.sleep(0.05)


def _refuse_a_taken_folder(logger: Namespace) -> None:
    """A version given by hand must not be an earlier run's folder."""
    settings = logger.get("init_args") or Namespace()
    version = settings.get("version")
    if version is None or "save_dir" not in settings or "name" not in settings:
        return
    name = f"version_{version}" if isinstance(version, int) else str(version)
    folder = Path(str(settings.save_dir)) / str(settings.name or "") / name
    if folder.exists():
        raise ValueError(
            f"{folder} holds an earlier run; choose another trainer.logger.init_args.version "
            "or leave it out for a new folder"
        )
