"""A trained network from a checkpoint, ready to read digits, without Lightning.

The tools that only use a trained model (predict, export, serve) load it here: the
network named in the checkpoint, its weights, and the input scaling it was trained
with. They start in a fraction of the time a training command needs, because neither
Lightning nor torchmetrics is imported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from digits.dataset import NUM_PIXELS, DigitsSplits, Scaling
from digits.networks import as_factory
from digits.reading.checkpoint import calibration_of, read_checkpoint
from digits.reading.familiar import Familiarity, familiarity_state_of, features_and_logits

# How a checkpoint of this project's own data module names it.
DIGITS_DATA_CLASSES = ("digits.DigitsDataModule", "digits.data.DigitsDataModule")


@dataclass(frozen=True)
class Reading:
    """What the model says about one digit."""

    digit: int  # the likeliest
    probability: float  # its calibrated probability
    sure: bool  # the probability reaches the threshold (and the image is familiar)
    likeliest: tuple[int, int]  # the two likeliest digits, likeliest first
    # Unlike every digit the checkpoint trained on: not sure, however probable the digit.
    unfamiliar: bool = False

    def words(self) -> str:
        if self.sure:
            return f"{self.digit} (probability {self.probability:.3f})"
        first, second = self.likeliest
        why = "not sure, unlike the digits it learned" if self.unfamiliar else "not sure"
        return f"{self.digit} (probability {self.probability:.3f}; {why}: {first} or {second}?)"


@dataclass(frozen=True)
class TrainedNetwork:
    """A network in eval mode on the CPU, the scaling its inputs need, and its calibration."""

    network: nn.Module
    scaling: Scaling
    data_settings: dict[str, Any] = field(default_factory=dict)  # the data module's, as trained
    temperature: float = 1.0  # probabilities are softmax(logits / temperature)
    threshold: float = 0.0  # a reading is sure from this probability on
    # Where the run kept one, images unlike its training digits are never sure.
    familiarity: Familiarity | None = None

    def inputs(self, pixels: np.ndarray) -> torch.Tensor:
        """(N, 64) pixels in load_digits' 0..16 -> the network's inputs, scaled as in training."""
        return torch.from_numpy(self.scaling(pixels))

    def calibrated_logits(self, pixels: np.ndarray) -> torch.Tensor:
        """(N, 64) pixels in load_digits' 0..16 -> (N, 10) logits over the temperature."""
        with torch.no_grad():
            return self.network(self.inputs(pixels)) / self.temperature

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 64) pixels in load_digits' 0..16 -> (N, 10) calibrated class probabilities."""
        return self.calibrated_logits(pixels).softmax(dim=-1).numpy()

    def probabilities_and_sureness(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated probabilities, and what the threshold is compared with: each
        image's top probability, or 0 where it is unlike every training digit (so that it
        is sure only at threshold 0, as every reading is)."""
        inputs = self.inputs(pixels)
        with torch.no_grad():
            if self.familiarity is None:
                logits, familiar = self.network(inputs), torch.ones(len(inputs), dtype=torch.bool)
            else:
                features, logits = features_and_logits(self.network, inputs, self.network)
                familiar = self.familiarity.familiar(features)
        probabilities = (logits / self.temperature).softmax(dim=-1).numpy()
        return probabilities, np.where(familiar.numpy(), probabilities.max(axis=1), 0.0)

    def readings(
        self,
        pixels: np.ndarray,
        threshold: float | None = None,
        too_small: Sequence[bool] | bool = False,
    ) -> tuple[np.ndarray, list[Reading]]:
        """The probabilities and a reading per row; ``threshold`` replaces the checkpoint's.

        A drawing ``too_small`` to be a digit yet (one flag, or one per row) is never sure.
        """
        probabilities, sureness = self.probabilities_and_sureness(pixels)
        limit = self.threshold if threshold is None else threshold
        small = np.broadcast_to(np.asarray(too_small, dtype=bool), len(probabilities))
        readings = []
        for row, how_sure, is_small in zip(probabilities, sureness, small, strict=True):
            first, second = (int(digit) for digit in np.argsort(-row, kind="stable")[:2])
            sure = bool(how_sure >= limit) and not is_small
            unfamiliar = bool(how_sure == 0)  # a probability is never 0: the test declined it
            readings.append(Reading(first, float(row[first]), sure, (first, second), unfamiliar))
        return probabilities, readings


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
    check_trained_on_digits(ckpt_path, data_settings, model["num_features"])
    splits = DigitsSplits.from_settings(data_settings)
    calibration = calibration_of(checkpoint)
    state = familiarity_state_of(checkpoint)
    familiarity = Familiarity.from_state(state, network.eval()) if state else None
    return TrainedNetwork(
        network.eval(), splits.scaling, data_settings, **calibration, familiarity=familiarity
    )


def check_trained_on_digits(
    ckpt_path: str | os.PathLike, data_settings: dict[str, Any], num_features: int
) -> None:
    """Reading images (predict, export, the page, drawn digits) needs a model of 8x8 digits.

    A checkpoint of another data module (``--data my_module.MyData``) names its class in
    its data settings (``_class_path``, which LightningCLI writes).
    """
    data_class = data_settings.get("_class_path", DIGITS_DATA_CLASSES[0])
    if data_class not in DIGITS_DATA_CLASSES or num_features != NUM_PIXELS:
        raise ValueError(
            f"{ckpt_path} was trained on {data_class} ({num_features} features), not on "
            "8x8 digits; score it with python -m digits test --config RUN/config.yaml "
            "--ckpt_path CKPT"
        )


def add_threshold_argument(parser: Any) -> None:
    """``--threshold``, the same on every command that reads digits with a checkpoint."""
    parser.add_argument(
        "--threshold",
        type=float | None,
        default=None,
        help="Sure from this probability on, instead of the checkpoint's own threshold.",
    )


def check_threshold(threshold: float | None) -> None:
    if threshold is not None and not 0 <= threshold <= 1:
        raise ValueError(f"--threshold must be a probability, 0 to 1, got {threshold}")
