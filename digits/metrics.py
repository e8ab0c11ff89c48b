"""What a stage's figures count: its mean loss and its accuracy (``stage_metrics``).

Kept apart from the model so that ``digits/model.py`` reads as the tutorial's step 2,
and because the callbacks that calibrate and judge familiarity need the same rule for
which images have a right answer (``class_labels``, ``NO_CLASS``).
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import MeanMetric, Metric, MetricCollection

NO_CLASS = -1  # accuracy leaves out an image whose target is not one class


class ClassAccuracy(Metric):
    """The share of images read as their class, leaving out those with no one class.

    The number torchmetrics' ``MulticlassAccuracy(average="micro",
    ignore_index=NO_CLASS)`` gives (0 when no image has a class), counted as
    torchmetrics' own guide to writing a metric counts it. That one leaves images out by
    boolean indexing, which makes the host wait for the GPU at every step; counting them
    as neither right nor read does not. (A ``MeanMetric`` weighted by "has a class"
    would too, but torchmetrics 1.9 drops its weights when ``nan_strategy="disable"``
    skips its own waiting check: Lightning-AI/torchmetrics issue 3434.)
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("right", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("counted", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """``preds``: logits or probabilities, (N, classes); ``target``: class indices."""
        has_class = target != NO_CLASS
        self.right += ((preds.argmax(dim=-1) == target) & has_class).sum()
        self.counted += has_class.sum()

    def compute(self) -> torch.Tensor:
        return self.right / self.counted.clamp(min=1)  # 0 of 0: 0, as torchmetrics says


def stage_metrics(prefix: str) -> MetricCollection:
    """The epoch's mean loss and its accuracy, named ``{prefix}loss`` and ``{prefix}acc``.

    Neither makes the host wait for the GPU while it is updated, only when it is
    computed at the epoch's end; a non-finite loss still shows in the epoch mean.
    """
    return MetricCollection(
        {"loss": MeanMetric(nan_strategy="disable"), "acc": ClassAccuracy()},
        prefix=prefix,
        compute_groups=False,
    )


def class_labels(targets: torch.Tensor) -> torch.Tensor:
    """The class of each target, for accuracy: an index, or the class a distribution is sure of.

    A target that spreads over several classes (it has no right answer) is ``NO_CLASS``,
    whatever its weight: a non-digit's uniform target times 10 puts 1 on every class.
    """
    if targets.ndim == 1:
        return targets
    top, label = targets.max(dim=-1)
    all_on_one = (top > 0) & (top == targets.sum(dim=-1))
    return torch.where(all_on_one, label, NO_CLASS)
