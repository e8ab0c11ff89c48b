"""A trained network from a checkpoint, ready to read digits, without Lightning.

The tools that only use a trained model (predict, export, serve) load it here: the
network named in the checkpoint, its weights, and the input scaling it was trained
with. They start in a fraction of the time a training command needs, because neither
Lightning nor torchmetrics is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from digits.checkpoint_file import read_checkpoint
from digits.dataset import DigitsSplits, Scaling
from digits.networks import as_factory


@dataclass(frozen=True)
class TrainedNetwork:
    """A network in eval mode on the CPU and the scaling its inputs need."""

    network: nn.Module
    scaling: Scaling
    data_settings: dict[str, Any] = field(default_factory=dict)  # the data module's, as trained

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 64) pixels in load_digits' 0..16 -> (N, 10) class probabilities."""
        features = torch.from_numpy(self.scaling(pixels))
        with torch.no_grad():
            return self.network(features).softmax(dim=-1).numpy()


def load_trained(ckpt_path: str | os.PathLike) -> TrainedNetwork:
    """The checkpoint's network and scaling; a one-line ``ValueError`` if it cannot be."""
    checkpoint = read_checkpoint(ckpt_path)
    model: dict[str, Any] = checkpoint.get("hyper_parameters") or {}
    if "network" not in model:
        raise ValueError(f"{ckpt_path} names no network: not a checkpoint of this project")
    try:
        network = as_factory(model["network"])(model["num_features"], model["num_classes"])
    except TypeError as error:  # arguments this version's network class does not take
        raise ValueError(
            f"{ckpt_path} names a network this version cannot build: {error}"
        ) from None
    weights = {
        name.removeprefix("network."): tensor
        for name, tensor in checkpoint["state_dict"].items()
        if name.startswith("network.")
    }
    try:
        network.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).splitlines()[1:2] or [str(error)]
        raise ValueError(f"{ckpt_path} does not fit its network: {first[0].strip()}") from None
    # Standard scaling is fitted on the training split: the split settings matter too.
    data_settings = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    splits = DigitsSplits.from_settings(data_settings)
    return TrainedNetwork(network.eval(), splits.scaling, data_settings)
