"""What a data module can be given besides ``load_digits``: more images, and batch transforms.

Both are composed in from the config by class path, so that the data module knows the
data set's split, scaling and loaders and nothing of any feature::

    data:
      sources:
        - class_path: digits.people.pen_digits.PenDigits      # drawn pen digits, and a "drawn" set
      transforms:
        - class_path: digits.people.augment.Shift
          init_args: {pixels: 1}

- A ``DataSource`` adds training images (with class indices or, for images without a
  right answer, distributions as targets) and may add validation and test sets of its
  own, scored under its ``name`` (``val/<name>_acc``).
- A ``BatchTransform`` changes each training batch on the training device, from a seed
  the data module gives it per step and process, so that a resumed run repeats it.

Each keeps its arguments under their own names, so that a run records it as
``{class_path, init_args}`` (``described``) and a checkpoint stays plain values.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import numpy as np
import torch
from torch import nn

from digits.dataset import DigitsSplits, Split


def settings_of(data_settings: dict, source: type) -> list[dict[str, Any]]:
    """The arguments of each of a run's data sources (a config's ``data``) of class ``source``.

    A run records every source as ``{class_path, init_args}`` (``described``), so its
    settings say which sources it trained on without importing any of them."""
    name = f"{source.__module__}.{source.__qualname__}"
    return [
        entry.get("init_args") or {}
        for entry in data_settings.get("sources") or []
        if isinstance(entry, dict) and entry.get("class_path") == name
    ]


def class_at(class_path: str) -> Any:
    """The class a config's ``class_path`` names, imported; ``ValueError`` if there is none."""
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"nothing named {class_path!r} can be imported") from None


def described(part: object) -> dict[str, Any]:
    """``{class_path, init_args}`` of a source or a transform, as a config names it."""
    kind = type(part)
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = list(inspect.signature(kind.__init__).parameters.values())[1:]  # after self
    names = [parameter.name for parameter in parameters if parameter.kind in named]
    description: dict[str, Any] = {"class_path": f"{kind.__module__}.{kind.__qualname__}"}
    if names:  # as jsonargparse writes a class without arguments
        description["init_args"] = {name: getattr(part, name) for name in names}
    return description


class DataSource:
    """Images for the data module beyond ``load_digits``'s, given whole, in 0..16.

    ``name``: what its own validation and test sets are scored under, or ``None`` when it
    adds training images only.
    """

    name: str | None = None

    def arrays(self, split: Split, splits: DigitsSplits) -> tuple[np.ndarray, np.ndarray] | None:
        """Its (N, 64) pixels in 0..16 and targets for ``split``, or ``None`` for none.

        For ``train`` they join the data set's training images; for ``val`` and
        ``test`` they are a set of their own. ``splits`` holds the data set's split
        settings, so that a source can cut its own images the same way.
        """
        raise NotImplementedError

    def prepare(self, split: Split, splits: DigitsSplits) -> None:
        """Keep on disk what ``arrays`` will read for ``split``; nothing by default.

        Called once per machine, before any process sets up for a stage that reads
        ``split`` (the data module's ``prepare_data``). A source that keeps its images on
        disk, as the pen digits and non-digits keep their drawings in a cache, makes them
        here, so that the processes of a multi-process run read them rather than all
        make them at once.
        """


class BatchTransform(nn.Module):
    """A random change of training batches: (N, 64) pixels in 0..16 and a seed in, the same out."""

    def forward(self, pixels: torch.Tensor, seed: int) -> torch.Tensor:
        raise NotImplementedError
