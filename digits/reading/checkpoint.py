"""A checkpoint file on disk: written so that a crash leaves the previous one, read safely.

- ``write_atomically`` writes to a temporary file beside the target and renames it into
  place, so a crash in the middle of a write leaves the previous checkpoint readable
  (Lightning's own ``_atomic_save`` writes the final file in place).
- ``read_checkpoint`` loads with ``weights_only=True``, so opening a checkpoint cannot
  run code, and turns every way a file can be wrong into a one-line ``ValueError``.
- ``upgrade`` brings a file written by an earlier version to today's layout, so that
  every reader (Lightning's, through ``SafeCheckpointIO``, and the tools') sees one.

Only torch and the standard library: the tools that read a checkpoint without training use it too.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from digits.paths import write_then_rename
from digits.reading.moved_settings import upgrade_settings

# Where the temperature and the "sure" threshold are kept: the state of the callback that
# fits them (digits.training.calibrate.Calibrate), under its state key.
CALIBRATION_STATE = "Calibrate"
# Earlier files kept them as two buffers of the model, in the state dict.
OLD_CALIBRATION_BUFFERS = {"temperature": "temperature", "sure_threshold": "threshold"}
BEST_VAL_ACC = "val_acc_best.max_value"  # the state dict's entry of the best val/acc
NO_CALIBRATION = {"temperature": 1.0, "threshold": 0.0}  # every reading sure, as before it


def upgrade(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint in today's layout, changed in place (and returned).

    - Written with the calibration as model buffers: it moves to the callback's state.
    - Written before the best val/acc was kept: none yet (MaxMetric's start, minus
      infinity), so that a resumed run starts remembering from there.
    - Written with settings that have moved since (``digits.reading.moved_settings``): in
      their new places.
    """
    settings = {
        "model": checkpoint.get("hyper_parameters"),
        "data": checkpoint.get("datamodule_hyper_parameters"),
    }
    upgrade_settings(settings)
    state_dict = dict(checkpoint["state_dict"])
    old = {
        new: float(state_dict.pop(name))
        for name, new in OLD_CALIBRATION_BUFFERS.items()
        if name in state_dict
    }
    if old:
        callbacks = checkpoint.setdefault("callbacks", {})
        callbacks.setdefault(CALIBRATION_STATE, {**NO_CALIBRATION, **old})
    state_dict.setdefault(BEST_VAL_ACC, torch.tensor(float("-inf")))
    checkpoint["state_dict"] = state_dict
    return checkpoint


def calibration_of(checkpoint: dict[str, Any]) -> dict[str, float]:
    """``{"temperature": T, "threshold": p}`` of an upgraded checkpoint (1 and 0 without)."""
    saved = (checkpoint.get("callbacks") or {}).get(CALIBRATION_STATE) or {}
    return {name: float(saved.get(name, value)) for name, value in NO_CALIBRATION.items()}


def write_atomically(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, flushed to disk, then renamed over ``path``."""
    write_then_rename(path, lambda file: torch.save(checkpoint, file))


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """A Lightning checkpoint, loaded with ``weights_only=True`` and upgraded; or why not."""
    file = Path(path)
    if file.is_dir():
        raise ValueError(f"{file} is a folder; give a checkpoint file in it (.ckpt)")
    if not file.is_file():
        raise ValueError(f"checkpoint not found: {file}")
    if is_torchscript_archive(file):
        raise ValueError(
            f"{file} is a TorchScript export, not a training checkpoint; give the .ckpt it "
            "was exported from"
        )
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
    return upgrade(checkpoint)


def is_torchscript_archive(file: Path) -> bool:
    """Whether ``file`` is what ``torch.jit.save`` writes: a zip whose archive holds its
    ``constants.pkl`` beside the code (``torch.save`` writes ``data.pkl`` alone)."""
    try:
        with zipfile.ZipFile(file) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except zipfile.BadZipFile:  # not a zip, or a damaged one: torch.load says which
        return False


def _last_words(message: str) -> str:
    """The most specific line of torch's multi-paragraph explanation."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    specific = [line for line in lines if "operand" in line or "Errno" in line]
    return (specific or lines or ["no detail"])[0][:80]
