"""A checkpoint file on disk: written so that a crash leaves the previous one, read safely.

- ``write_atomically`` writes to a temporary file beside the target and renames it into
  place, so a crash in the middle of a write leaves the previous checkpoint readable
  (Lightning's own ``_atomic_save`` writes the final file in place).
- ``read_checkpoint`` loads with ``weights_only=True``, so opening a checkpoint cannot
  run code, and turns every way a file can be wrong into a one-line ``ValueError``.

Only torch: the tools that read a checkpoint without training use it too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def write_atomically(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, flushed to disk, then renamed over ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file sits beside the target so that the rename stays on one file
    # system, where os.replace is atomic.
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
