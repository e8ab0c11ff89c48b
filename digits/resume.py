"""Starting from a checkpoint: which settings it brings, and where a resumed run writes.

A checkpoint carries the model's and the data module's hyperparameters. Stock
LightningCLI silently lets the checkpoint's model arguments override the command line;
here a setting the user left at its default takes the checkpoint's value, and one the
user set to something else is an error, since it would describe a model the checkpoint
does not hold, or (for the split) test on images the model was trained on.

A run resumed from a checkpoint inside ``<save_dir>/<name>/version_N/checkpoints/``
continues in that same folder: its TensorBoard curves carry on (steps logged after the
checkpoint are purged, so nothing is counted twice), and its checkpoint callbacks
reload their best score. Its own config goes to ``config.resume-K.yaml`` beside the
original ``config.yaml``, which stays untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from jsonargparse import Namespace, dict_to_namespace
from lightning.pytorch.cli import SaveConfigCallback

# The data module settings that decide which images are test images.
SPLIT_KEYS = ("test_size", "val_size", "split_seed", "scale")


def adopt_checkpoint_settings(
    config: Any, defaults: Any, checkpoint: dict[str, Any], ckpt_path: str
) -> None:
    """Take the checkpoint's model and split settings where the user kept the defaults."""
    saved_groups = {
        "model": checkpoint.get("hyper_parameters") or {},
        "data": {
            key: value
            for key, value in (checkpoint.get("datamodule_hyper_parameters") or {}).items()
            if key in SPLIT_KEYS
        },
    }
    conflicts = []
    for group, saved in saved_groups.items():
        for key, saved_value in saved.items():
            if key.startswith("_") or key not in config[group]:
                continue
            value = config[group][key]
            if _same(value, saved_value):
                continue
            if _same(value, defaults[group][key]):
                config[group][key] = (
                    dict_to_namespace(saved_value) if isinstance(saved_value, dict) else saved_value
                )
            else:
                conflicts += [
                    f"{group}.{name}={mine!r} but the checkpoint has {theirs!r}"
                    for name, mine, theirs in _differences(key, value, saved_value)
                ]
    if conflicts:
        raise ValueError(f"{ckpt_path} does not match the config: " + "; ".join(conflicts))


def _plain(value: Any) -> Any:
    """Namespaces as dicts and tuples as lists, so that a config compares to a checkpoint."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
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


def resume_command(run: Path, checkpoint: Path) -> str:
    """The command that resumes a run, as the README shows it."""
    return f"python -m digits.fit --config {run / 'config.yaml'} --ckpt_path {checkpoint}"


class ResumableSaveConfig(SaveConfigCallback):
    """Saves ``config.yaml``, or for a resumed run ``config.resume-K.yaml`` beside it."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        log_dir = Path(trainer.log_dir or ".")
        resuming = bool(self.config.get("ckpt_path"))  # trainer.ckpt_path is not set yet
        if resuming and (log_dir / self.config_filename).exists():
            resume = 1
            while (log_dir / f"config.resume-{resume}.yaml").exists():
                resume += 1
            self.config_filename = f"config.resume-{resume}.yaml"
        super().setup(trainer, pl_module, stage)
