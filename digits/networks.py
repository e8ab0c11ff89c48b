"""The networks: plain ``nn.Module``s that map (N, 64) pixels to (N, 10) logits.

Each takes ``num_features`` and ``num_classes`` first, so that ``DigitsClassifier`` can
build any of them from the data module's shape, and the config names one by class path:

    model:
      network:
        class_path: digits.networks.ConvNet
        init_args: {channels: 32, dropout: 0.25}
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from digits.extras import class_at

NetworkFactory = Callable[[int, int], nn.Module]  # (num_features, num_classes) -> network


class MLP(nn.Sequential):
    """Fully connected layers with ReLU, the tutorial's network by default (64-32-10)."""

    def __init__(
        self,
        num_features: int = 64,
        num_classes: int = 10,
        hidden_sizes: Sequence[int] = (32,),
        dropout: float = 0.0,
    ) -> None:
        if not hidden_sizes or min(hidden_sizes) < 1:
            raise ValueError(
                f"model.network.hidden_sizes must be positive widths, got {list(hidden_sizes)}"
            )
        check_dropout(dropout)
        layers: list[nn.Module] = []
        width = num_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # Images, (N, H, W) or (N, C, H, W), read as one vector each; flattened here
        # rather than by an nn.Flatten layer, so that every checkpoint's layer numbers
        # stay what they were. One sample alone, (num_features,), stays as it is. The
        # loop is nn.Sequential's own, written out: TorchScript cannot script super().
        if features.dim() > 2:
            features = features.flatten(start_dim=1)
        for layer in self:
            features = layer(features)
        return features


class ConvNet(nn.Module):
    """Two 3x3 convolutions over the image's square grid (8x8 digits), then a small classifier.

    The pixels' neighbourhood is what an MLP has to learn from scratch; a convolution
    starts with it, and shares what it learns across positions.
    """

    def __init__(
        self,
        num_features: int = 64,
        num_classes: int = 10,
        channels: int = 32,
        hidden_size: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        side = round(num_features**0.5)
        if side * side != num_features:
            raise ValueError(
                "ConvNet reads square images of one channel, side x side features (64 for "
                f"8x8), got {num_features} features; the MLP reads any shape"
            )
        if channels < 1 or hidden_size < 1:
            raise ValueError("model.network.channels and hidden_size must be at least 1")
        check_dropout(dropout)
        self.side = side
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * channels * (side // 2) ** 2, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, num_classes),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # Rows of side x side features, or square one-channel images, the channel first or
        # last (as Keras and TensorFlow put it); anything else would be reshaped into
        # squares it is not (8x32 read as 16x16) without a word. Written out, with no
        # generator, so that TorchScript can script it.
        side = self.side
        sample = pixels.shape[1:] if pixels.dim() > 1 else pixels.shape
        if not torch.jit.is_tracing() and not (  # a trace is of flat rows (export.py)
            (len(sample) == 1 and sample[0] == side * side)
            or (len(sample) == 2 and sample[0] == side and sample[1] == side)
            or (len(sample) == 3 and sample[0] == 1 and sample[1] == side and sample[2] == side)
            or (len(sample) == 3 and sample[0] == side and sample[1] == side and sample[2] == 1)
        ):
            size = "x".join([str(length) for length in sample])
            if (
                pixels.shape[0] == side
                and pixels.shape[1] == side
                and (pixels.dim() == 2 or (pixels.dim() == 3 and pixels.shape[2] == 1))
            ):
                size += " (one image? give it a batch dimension: image[None])"
            raise ValueError(
                f"ConvNet reads images of one channel, {side}x{side} here "
                f"({side * side} features), got {size}; the MLP reads any shape"
            )
        images = pixels.reshape(-1, 1, side, side)
        return self.classifier(self.features(images))


def check_dropout(dropout: float) -> None:
    if not 0 <= dropout < 1:
        raise ValueError(f"model.network.dropout must be in [0, 1), got {dropout}")


def as_factory(network: NetworkFactory | dict[str, Any]) -> NetworkFactory:
    """A network class, a partial of one, or its ``{class_path, init_args}`` description."""
    if isinstance(network, dict):
        class_path = network["class_path"]
        try:
            network_class = class_at(class_path)
        except ValueError:
            raise ValueError(f"no network class {class_path!r}") from None
        # A checkpoint names its network: build nothing but a torch module from it.
        if not (isinstance(network_class, type) and issubclass(network_class, nn.Module)):
            raise ValueError(f"{class_path!r} is not a torch.nn.Module class")
        return functools.partial(network_class, **(network.get("init_args") or {}))
    return network


def describe(network: NetworkFactory | dict[str, Any]) -> dict[str, Any]:
    """``{class_path, init_args}``: how the network is saved in ``hparams`` and checkpoints.

    A checkpoint then holds plain values only and loads with ``weights_only=True``.
    """
    if isinstance(network, dict):
        return network
    init_args: dict[str, Any] = {}
    if isinstance(network, functools.partial) and isinstance(network.func, type):
        network, init_args = network.func, dict(network.keywords)
    if not isinstance(network, type):
        raise ValueError(f"model.network must be a network class, got {network!r}")
    return {"class_path": f"{network.__module__}.{network.__qualname__}", "init_args": init_args}
