"""Probabilities that mean what they say, and when to say "not sure".

A network trained with cross-entropy is often surer than it is right. Two numbers, both
fitted after training on validation images and kept in the checkpoint, fix what the
project shows:

- the *temperature* T (Guo et al., 2017, "On calibration of modern neural networks"):
  probabilities are ``softmax(logits / T)``. One scalar, fitted by minimising the
  negative log-likelihood of the validation labels with the weights frozen, so the
  digit read (the argmax) never changes;
- the *threshold*: a reading is sure when its probability reaches it. It is the lowest
  probability at which the validation readings at or above it are wrong no more often
  than a target rate (selective classification), in every validation set: their
  mistakes counted, or expected from their calibrated probabilities.

``digits.training.calibrate.Calibrate`` fits them at the end of every run. A checkpoint
from before this has neither: it means temperature 1 and threshold 0, so every reading
is sure, as it was. Only torch here: the tools that read a checkpoint without Lightning
use it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F

TARGET_ERROR = 0.005  # at most this share of the sure validation readings may be wrong
CALIBRATION_BINS = 15  # the usual choice for the expected calibration error


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-label ECE (L1) with the bins every run logs, torchmetrics' own computation.

    torchmetrics is imported here, not at the top, so that the tools that only read a
    checkpoint do not load it.
    """
    from torchmetrics.functional.classification import multiclass_calibration_error

    classes = probabilities.shape[1]
    return float(
        multiclass_calibration_error(probabilities, labels, classes, n_bins=CALIBRATION_BINS)
    )


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels``.

    Optimised as log T, so that T stays positive, with L-BFGS, as in the paper's own
    code: one variable and a smooth, convex objective. When every reading is right, the
    likelihood only grows as T shrinks towards 0 (every probability towards 1): there
    is no temperature to find, and T stays 1.
    """
    logits, labels = logits.detach().double(), labels.detach()
    if bool((logits.argmax(dim=-1) == labels).all()):
        return 1.0
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [log_temperature], lr=0.5, max_iter=200, line_search_fn="strong_wolfe"
    )

    def negative_log_likelihood() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_temperature.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(negative_log_likelihood)
    return float(log_temperature.detach().exp())


def _lowest_within_target(
    confidence: torch.Tensor, error: torch.Tensor, target_error: float
) -> float:
    """The lowest of ``confidence`` (sorted, surest first) whose running ``error`` is within target.

    A threshold can only fall between distinct probabilities: only the last reading of each
    run of equal ones counts, where the running error counts all of them. If even the
    surest reading is beyond the target, nothing is sure: the threshold is the next float32
    above every probability, since the tools compare float32 probabilities with it.
    """
    if not len(confidence):
        raise ValueError("no readings to choose a threshold on")
    last_of_run = torch.ones_like(confidence, dtype=torch.bool)
    last_of_run[:-1] = confidence[1:] < confidence[:-1]
    allowed = (error <= target_error) & last_of_run
    if not allowed.any():
        return float(torch.nextafter(confidence[0].float(), torch.tensor(2.0)))
    return float(confidence[allowed.nonzero().max()])


def counted_threshold(
    probabilities: torch.Tensor, labels: torch.Tensor, target_error: float = TARGET_ERROR
) -> float:
    """The lowest top probability whose readings from it up are at most ``target_error`` wrong.

    Readings are taken from the surest down and their mistakes counted; the threshold is
    the lowest probability at which the share of wrong ones among those taken is within
    the target (a wrong reading at the top can be outweighed by many right ones below it).
    """
    confidence, digit = probabilities.max(dim=-1)
    order = confidence.argsort(descending=True)
    confidence, wrong = confidence[order], (digit != labels)[order].double()
    error_rate = wrong.cumsum(0) / torch.arange(1, len(wrong) + 1, dtype=torch.float64)
    return _lowest_within_target(confidence, error_rate, target_error)


def expected_threshold(probabilities: torch.Tensor, target_error: float = TARGET_ERROR) -> float:
    """The lowest top probability whose readings from it up expect at most ``target_error`` wrong.

    Readings are taken from the surest down, each expected to be wrong with one minus its
    calibrated probability; the threshold stops where the mean of those would pass the
    target (the mean only grows). The labels count through the temperature alone, fitted
    on all of them. A float32 probability of a very sure reading rounds to exactly 1 and
    expects nothing, so a target of 0 would make exactly those sure: it must be above 0.
    """
    if target_error <= 0:
        raise ValueError(f"the expected rule needs a target error above 0, got {target_error}")
    confidence = probabilities.max(dim=-1).values.sort(descending=True).values
    taken = torch.arange(1, len(confidence) + 1, dtype=torch.float64)
    expected_error = (1 - confidence.double()).cumsum(0) / taken
    return _lowest_within_target(confidence, expected_error, target_error)


ThresholdRule = Literal["counted", "expected"]
THRESHOLD_RULES: tuple[ThresholdRule, ...] = get_args(ThresholdRule)


def choose_threshold(
    probabilities: torch.Tensor,
    labels: torch.Tensor,
    target_error: float = TARGET_ERROR,
    rule: ThresholdRule = "counted",
) -> float:
    """The threshold by one of two rules, each right for a different kind of model.

    ``counted`` counts the validation mistakes: it asks nothing of the probabilities, but
    hangs on the few mistakes there are. A few hundred readings at a target of 0.25%
    allow one wrong sure reading, and two confident mistakes near the top leave a third of
    them sure. ``expected`` takes the mistakes the calibrated probabilities expect:
    steady where mistakes are few, and as honest as the probabilities are at the top.
    Which is better for a config is measured on validation (``scripts/threshold_target.py``).
    """
    if rule == "expected":
        return expected_threshold(probabilities, target_error)
    if rule == "counted":
        return counted_threshold(probabilities, labels, target_error)
    raise ValueError(
        f"the threshold rule must be one of {', '.join(THRESHOLD_RULES)}, got {rule!r}"
    )


@dataclass(frozen=True)
class Calibration:
    """What ``fit_calibration`` fitted, and how the validation readings fare with it."""

    temperature: float
    threshold: float
    coverage: float  # the share of validation readings that are sure
    sure_error: float  # the share of the sure ones that are wrong
    nll_before: float
    nll_after: float


def fit_calibration(
    logits: torch.Tensor,
    labels: torch.Tensor,
    target_error: float = TARGET_ERROR,
    sets: torch.Tensor | None = None,
    rule: ThresholdRule = "counted",
) -> Calibration:
    """Temperature and threshold from validation logits and labels.

    ``sets`` numbers each reading's validation set (the data set's own, the drawn
    digits...). The temperature is fitted on all of them; the threshold is the highest of
    the sets' own, so that the sure readings of *every* set are at most ``target_error``
    wrong: the easiest set's many right readings must not hide the errors of the set
    that is read where it counts (the page reads drawings). ``rule`` says how a set's
    mistakes are told (``choose_threshold``).
    """
    logits, labels = logits.detach().float().cpu(), labels.detach().cpu()
    sets = torch.zeros_like(labels) if sets is None else sets.detach().cpu()
    temperature = fit_temperature(logits, labels)
    probabilities = (logits / temperature).softmax(dim=-1)
    threshold = max(
        choose_threshold(probabilities[sets == name], labels[sets == name], target_error, rule)
        for name in sets.unique()
    )
    confidence, digit = probabilities.max(dim=-1)
    sure = confidence >= threshold
    sure_error = float((digit[sure] != labels[sure]).float().mean()) if sure.any() else 0.0
    return Calibration(
        temperature=temperature,
        threshold=threshold,
        coverage=float(sure.float().mean()),
        sure_error=sure_error,
        nll_before=float(F.cross_entropy(logits, labels)),
        nll_after=float(F.cross_entropy(logits / temperature, labels)),
    )
