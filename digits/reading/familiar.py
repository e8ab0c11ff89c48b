"""Is an image like the digits a network trained on? Its distance to their nearest ones.

A probability threshold alone answers as sure anything the softmax gives to one digit,
and a network that never saw a kind of non-digit may give it to one. The distance from
an image's features to its ``neighbour``-th nearest training digit's (Sun et al., 2022,
"Out-of-distribution detection with deep nearest neighbors") needs no example of what
to decline: an image far from every training digit is unfamiliar, whatever the softmax
says. The features are the network's ``features`` block where it has one (a ConvNet's
convolutions), otherwise the input of its last layer, scaled to length 1.

``Familiarity`` holds what a checkpoint keeps for it (the training digits as the network
reads them, and the distance beyond which an image is unfamiliar, fitted on validation
by ``digits.training.familiar.DeclineUnfamiliar``) and answers for a batch. Only torch:
the tools that read a checkpoint without training use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

# Where a checkpoint keeps it: the state of the callback that fits it.
FAMILIARITY_STATE = "DeclineUnfamiliar"
QUERY_CHUNK = 1024  # images compared with the whole bank at once, to bound memory


def features_block(network: nn.Module) -> nn.Module:
    """The block whose output the neighbours are found in: a ``features`` block (searched
    by name, so a LightningModule holding the network finds it too), or the last layer."""
    for name, module in network.named_modules():
        if name.rsplit(".", 1)[-1] == "features":
            return module
    return [module for module in network.modules() if isinstance(module, nn.Linear)][-1]


def catch_features(network: nn.Module, seen: dict[str, torch.Tensor]) -> RemovableHandle:
    """From now on, every forward pass of ``network`` leaves its features, unit length and
    in float32, in ``seen["features"]``; remove the returned handle to stop."""
    block = features_block(network)
    is_last_layer = isinstance(block, nn.Linear)

    def keep(module: nn.Module, arguments: tuple, output: torch.Tensor) -> None:
        features = (arguments[0] if is_last_layer else output).flatten(1)
        seen["features"] = nn.functional.normalize(features.detach().float(), dim=1)

    return block.register_forward_hook(keep)


def features_and_logits(
    network: nn.Module, inputs: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``forward(inputs)``'s logits, and ``network``'s features of the same pass, unit length."""
    seen: dict[str, torch.Tensor] = {}
    hook = catch_features(network, seen)
    try:
        logits = forward(inputs)
    finally:
        hook.remove()
    return seen["features"], logits


def features_in_chunks(
    network: nn.Module, inputs: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """The features of many images (the training digits), ``QUERY_CHUNK`` at a time: at
    once, a ConvNet's activations for 16,000 images would take hundreds of MB."""
    chunks = [features_and_logits(network, part, forward)[0] for part in inputs.split(QUERY_CHUNK)]
    return torch.cat(chunks)


def neighbour_distances(features: torch.Tensor, bank: torch.Tensor, neighbour: int) -> torch.Tensor:
    """Each row's distance to its ``neighbour``-th nearest row of ``bank`` (both unit length)."""
    bank = bank.to(features.device)
    distances = [
        torch.cdist(chunk, bank).topk(neighbour, largest=False).values[:, -1]
        for chunk in features.split(QUERY_CHUNK)
    ]
    return torch.cat(distances) if distances else features.new_zeros(0)


@dataclass(frozen=True)
class Familiarity:
    """The training digits' features and the distance beyond which an image is unfamiliar."""

    bank: torch.Tensor  # (N, D) features of the training digits, unit length
    cutoff: float  # familiar up to this distance to the neighbour-th nearest of them
    neighbour: int

    def familiar(self, features: torch.Tensor) -> torch.Tensor:
        """(N, D) unit-length features -> (N,) booleans."""
        return neighbour_distances(features, self.bank, self.neighbour) <= self.cutoff

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        network: nn.Module,
        forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> Familiarity:
        """From a checkpoint's state: the training digits are kept as the network's inputs
        (small), and read into features here by ``forward`` (the network itself unless a
        trainer reads them its own way, in its precision and on its device)."""
        inputs = state["bank_inputs"].float()
        with torch.no_grad():
            bank = features_in_chunks(network, inputs, forward or network)
        return cls(bank, float(state["cutoff"]), int(state["neighbour"]))


def familiarity_state_of(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint's kept state for it, or ``None`` (a run without the callback)."""
    state = (checkpoint.get("callbacks") or {}).get(FAMILIARITY_STATE)
    return state if state and state.get("bank_inputs") is not None else None
