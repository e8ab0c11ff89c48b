"""Starting from a checkpoint: which settings it brings, and what a resumed run repeats.

A checkpoint carries the model's and the data module's hyperparameters. Stock
LightningCLI silently lets the checkpoint's model arguments override the command line;
here a setting the user left at its default takes the checkpoint's value, and one the
user set to something else is an error, since it would describe a model the checkpoint
does not hold, or (for the split) test on images the model was trained on.

A resumed run keeps its original ``config.yaml`` and writes its own as
``config.resume-K.yaml`` beside it, and it logs the ``train/*`` values of the
checkpoint's epoch if they never reached the event files. Where it writes is
``digits.training.folders``'s business.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, NoReturn

import lightning as L
import torch
from jsonargparse import Namespace
from lightning.pytorch.cli import SaveConfigCallback

from digits.dataset import SPLIT_SETTINGS
from digits.errors import USAGE_ERROR, UsageError
from digits.extras import class_at
from digits.reading.checkpoint import read_checkpoint
from digits.training.folders import resumed_in_place, run_log_dir
from digits.training.lightning_internals import epoch_ended, scalar_events
from digits.training.tensorboard import rank_zero_tensorboard

DIGITS_DATA = "digits.data.DigitsDataModule"
# The data settings a checkpoint brings: which images each split holds, and their scaling.
ADOPTED_DATA_SETTINGS = (*SPLIT_SETTINGS, "sources")


def read_and_adopt(config: Namespace, defaults: Namespace) -> dict[str, Any] | None:
    """The checkpoint in ``config.ckpt_path`` (if any), its settings adopted into ``config``.

    Read right after parsing, before Lightning reads it, so that a bad file is a
    one-line error and not a traceback.
    """
    if not config.get("ckpt_path"):
        return None
    checkpoint = read_checkpoint(config.ckpt_path)
    check_same_data_class(config, checkpoint, config.ckpt_path)
    adopt_checkpoint_settings(config, defaults, checkpoint, config.ckpt_path)
    return checkpoint


def check_same_data_class(config: Namespace, checkpoint: dict[str, Any], ckpt_path: str) -> None:
    """A checkpoint of one data module is not resumed, validated or tested on another.

    LightningCLI writes the data's class into the checkpoint (``_class_path``); the
    config names it as ``data.class_path`` only for a data module other than this one's.
    """
    saved = (checkpoint.get("datamodule_hyper_parameters") or {}).get("_class_path")
    given = config.data.get("class_path") if isinstance(config.data, Namespace) else None
    if saved is None or _same_class(saved, given or DIGITS_DATA):
        return
    raise ValueError(
        f"{ckpt_path} was trained on the data {saved}; name it as this run's data: "
        f"--data {saved} (or --config RUN/config.yaml)"
    )


def _same_class(saved: str, given: str) -> bool:
    """Whether two class paths name one class (``digits.DigitsDataModule`` is ``digits.data``'s)."""
    try:
        return class_at(saved) is class_at(given)
    except ValueError:
        return saved == given  # one is gone since: compared by name


def adopt_checkpoint_settings(
    config: Any, defaults: Any, checkpoint: dict[str, Any], ckpt_path: str
) -> None:
    """Take the checkpoint's model and data settings where the user kept the defaults."""
    data_settings, data_defaults, adopted = _data_settings(config, defaults)
    saved_groups = {
        "model": (config.model, defaults.model, checkpoint.get("hyper_parameters") or {}),
        "data": (
            data_settings,
            data_defaults,
            {
                key: value
                for key, value in (checkpoint.get("datamodule_hyper_parameters") or {}).items()
                if adopted is None or key in adopted
            },
        ),
    }
    conflicts = []
    for group, (settings, group_defaults, saved) in saved_groups.items():
        for key, saved_value in saved.items():
            if key.startswith("_") or key not in settings:
                continue
            value = settings[key]
            if _same(value, saved_value):
                continue
            if key in group_defaults and _same(value, group_defaults[key]):
                settings[key] = _as_namespace(saved_value)
            else:
                conflicts += [
                    f"{group}.{name}={mine!r} but the checkpoint has {theirs!r}"
                    for name, mine, theirs in _differences(key, value, saved_value)
                ]
    if conflicts:
        raise ValueError(f"{ckpt_path} does not match the config: " + "; ".join(conflicts))


def _data_settings(
    config: Any, defaults: Any
) -> tuple[Any, dict[str, Any], tuple[str, ...] | None]:
    """The data's settings, their defaults, and which of the checkpoint's to adopt (None: all).

    This project's data module adopts the settings that choose its images. A data module
    of your own (``--data CLASS``, whose settings are ``init_args``) adopts those it names
    as ``checkpoint_settings``, else every setting its ``save_hyperparameters`` recorded:
    only it can tell which of them choose its split, and testing on another split would
    score images the model trained on.
    """
    if "class_path" not in config.data:
        return config.data, defaults.data, ADOPTED_DATA_SETTINGS
    data_class = class_at(config.data.class_path)
    own_defaults = {
        parameter.name: parameter.default
        for parameter in inspect.signature(data_class).parameters.values()
        if parameter.default is not inspect.Parameter.empty
    }
    adopted = getattr(data_class, "checkpoint_settings", None)
    return config.data.get("init_args") or Namespace(), own_defaults, adopted


def _as_namespace(value: Any) -> Any:
    """A checkpoint's nested dicts as the parsed config holds them."""
    if isinstance(value, dict):
        return Namespace(**{key: _as_namespace(item) for key, item in value.items()})
    return value


def _plain(value: Any) -> Any:
    """Namespaces as dicts and tuples as lists, so that a config compares to a checkpoint."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, dict):
        # A class without arguments may be written with empty init_args or without.
        return {
            key: _plain(item) for key, item in value.items() if item != {} or key != "init_args"
        }
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _differences(name: str, mine: Any, theirs: Any) -> list[tuple[str, Any, Any]]:
    """(dotted name, mine, theirs) for each leaf where two settings differ."""
    mine, theirs = _plain(mine), _plain(theirs)
    if isinstance(mine, dict) and isinstance(theirs, dict):
        return [
            difference
            for key in dict.fromkeys([*mine, *theirs])
            for difference in _differences(f"{name}.{key}", mine.get(key), theirs.get(key))
        ]
    return [] if mine == theirs else [(name, mine, theirs)]


def _same(a: Any, b: Any) -> bool:
    return _plain(a) == _plain(b)


def check_state_dict(model: torch.nn.Module, checkpoint: dict[str, Any], ckpt_path: str) -> None:
    """The checkpoint's tensors must fit the model, or loading would fail mid-run."""
    expected = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    found = {name: tuple(value.shape) for name, value in checkpoint["state_dict"].items()}
    if expected != found:
        differing = sorted(set(expected.items()) ^ set(found.items()))
        name = differing[0][0]
        raise ValueError(
            f"{ckpt_path} holds a different network: {name} is "
            f"{found.get(name, 'missing')} there, {expected.get(name, 'absent')} here"
        )


def resume_command(config: Path, checkpoint: Path) -> str:
    """The command that resumes a run, as the README shows it."""
    return f"python -m digits.fit --config {config} --ckpt_path {checkpoint}"


def saved_config(trainer: L.Trainer, log_dir: Path) -> Path:
    """The file this run's settings were saved in: ``config.yaml``, or a resumed run's
    ``config.resume-K.yaml``, whose settings (more epochs, say) the next resume needs."""
    savers = [cb for cb in trainer.callbacks if isinstance(cb, SaveConfigCallback)]
    return log_dir / (savers[0].config_filename if savers else "config.yaml")


def refuse_in_every_process(trainer: L.Trainer, message: str) -> NoReturn:
    """A user's mistake that every process finds at once, in a callback: the first process
    says it in one line, the others end with the same exit code without a word."""
    if not trainer.is_global_zero:
        raise SystemExit(USAGE_ERROR)
    raise UsageError(message)


class ResumableSaveConfig(SaveConfigCallback):
    """Saves ``config.yaml`` in the run's own folder (``run_log_dir``), or for a resumed
    run ``config.resume-K.yaml`` beside it."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not self.already_saved:  # setup runs again for the test after training
            self.choose_where(trainer)
        super().setup(trainer, pl_module, stage)

    def choose_where(self, trainer: L.Trainer) -> None:
        self.folder = Path(run_log_dir(trainer) or ".")
        # Lightning saves into trainer.log_dir, for some loggers a folder every run shares;
        # there the config goes through save_config, its hook for saving elsewhere.
        self.save_to_log_dir = self.folder == Path(trainer.log_dir or ".")
        resuming = bool(self.config.get("ckpt_path"))  # trainer.ckpt_path is not set yet
        if resuming and (self.folder / self.config_filename).exists():
            resume = 1
            while (self.folder / f"config.resume-{resume}.yaml").exists():
                resume += 1
            self.config_filename = f"config.resume-{resume}.yaml"
        if not self.save_to_log_dir:
            # Refused in every process at once, as Lightning's own check is, so that
            # under DDP no process waits for the one that refused.
            path = self.folder / self.config_filename
            taken = trainer.strategy.broadcast(path.exists() if trainer.is_global_zero else False)
            if taken:
                refuse_in_every_process(
                    trainer,
                    f"{path} holds an earlier run's config: give the logger another version, "
                    "or none for a new run",
                )

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.save_to_log_dir:
            return  # saved by Lightning, in setup
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / self.config_filename
        self.parser.save(self.config, str(path), skip_unset=False, multifile=self.multifile)


class ScheduleLengthKept(L.Callback):
    """A resumed run keeps the number of steps its learning-rate schedule was laid out over.

    Lightning restores the scheduler's state, its length included, over the one the model
    configured for this run: past the old length one-cycle fails mid-run and cosine
    warms up again. Checked in ``setup``, when the run's length is known and before the
    run's config is saved, so that a refused run writes nothing.
    """

    def __init__(self, checkpoint: dict[str, Any], ckpt_path: str) -> None:
        self.laid_out = scheduled_steps(checkpoint)
        self.schedule = (checkpoint.get("hyper_parameters") or {}).get("lr_schedule")
        self.ckpt_path = ckpt_path

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.laid_out is None or stage != "fit":
            return
        steps = trainer.estimated_stepping_batches
        if steps == self.laid_out:
            return
        refuse_in_every_process(
            trainer,
            f"model.lr_schedule={self.schedule} of {self.ckpt_path} spans {self.laid_out} "
            f"steps, and this run {steps}: resume with the length the run started with",
        )


def scheduled_steps(checkpoint: dict[str, Any]) -> int | None:
    """The steps a checkpoint's schedule spans: ``OneCycleLR``'s or ``CosineAnnealingLR``'s."""
    for state in checkpoint.get("lr_schedulers") or []:
        for length in ("total_steps", "T_max"):
            if length in state:
                return int(state[length])
    return None


class EpochScalarsInCheckpoint(L.Callback):
    """Keeps an epoch's ``train/*`` values in the checkpoints written at its end.

    Lightning writes an epoch's checkpoints before it logs that epoch's training
    metrics, about a millisecond later (validation metrics are logged and flushed
    before). A run killed in between leaves a ``last.ckpt`` whose epoch has no
    ``train/*`` points in TensorBoard, and the resumed run, which starts after that
    epoch, would never log them. So the values go into the checkpoint, and a run
    resumed in its own folder logs those that never reached the event files.
    """

    KEY = "digits_epoch_end_scalars"

    def __init__(self) -> None:
        self.pending: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if not epoch_ended(trainer):
            return  # mid-epoch (Ctrl-C), where the last epoch's metrics are already logged
        checkpoint[self.KEY] = {
            "step": trainer.global_step - 1,  # where Lightning logs the epoch's metrics
            "scalars": {
                name: float(value)
                for name, value in trainer.callback_metrics.items()
                if name.startswith("train/")
            },
        }

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.pending = checkpoint.get(self.KEY)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pending, self.pending = self.pending, None
        logger = rank_zero_tensorboard(trainer)
        if pending is None or logger is None:
            return
        if not resumed_in_place(trainer.ckpt_path, logger.log_dir):
            return
        step = pending["step"]
        logged = scalar_events(logger.log_dir)
        missing = {
            name: value
            for name, value in pending["scalars"].items()
            if step not in {event.step for event in logged.get(name, [])}
        }
        if missing:
            logger.log_metrics(missing, step=step)
            logger.save()
