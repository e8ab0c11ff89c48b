"""Which ``--calibrate.rule`` and ``target_error`` to give a config, chosen on validation alone.

The threshold of "sure" is fitted on the validation images, so reading those same images
would flatter it. This fits the temperature and the threshold (``fit_calibration``, as a
run does) on a random half of each validation set of each checkpoint given, reads the
other half, and does so for 20 halvings, each half in turn. For each rule and target it
prints, per validation set, the share of the held-out half answered as sure (mean, 5th
percentile, lowest) and how many of those sure readings are wrong: mistakes expected
from the calibrated probabilities at each of ``--targets``, and mistakes counted on the
labels at each of ``--counted``::

    python scripts/threshold_target.py lightning_logs/best/version_*/checkpoints/epoch035.ckpt \\
        --targets 0.0015 0.002 0.0025 --counted 0.0025

Give it checkpoints of split seeds that the final figures are not measured on. The
halvings are drawn from one generator in the order the checkpoints are given.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from digits.dataset import DigitsSplits
from digits.extras import settings_of
from digits.people.drawn import drawn_splits_of
from digits.people.pen_digits import PenDigits
from digits.reading.sure import ThresholdRule, fit_calibration
from digits.reading.trained import TrainedNetwork, load_trained

HALVINGS = 20

Sets = dict[str, tuple[torch.Tensor, torch.Tensor]]  # name -> (logits, labels)
Found = dict[tuple[str, str], list[tuple[int, int, int]]]  # (rule, set) -> per held-out half


def validation_sets(trained: TrainedNetwork) -> Sets:
    """Each validation set the run was calibrated on: its logits, before any temperature."""
    arrays = {"load_digits": DigitsSplits.from_settings(trained.data_settings).arrays("val", False)}
    if settings_of(trained.data_settings, PenDigits):
        arrays["drawn"] = drawn_splits_of(trained).arrays("val")
    sets = {}
    for name, (pixels, labels) in arrays.items():
        with torch.no_grad():
            logits = trained.network(trained.inputs(pixels))
        sets[name] = (logits, torch.from_numpy(labels))
    return sets


def held_out_readings(
    sets: Sets, rules: list[tuple[ThresholdRule, float]], generator: np.random.Generator
) -> Found:
    """(rule, set) -> (readings, sure ones, wrong sure ones) of each held-out half."""
    found: Found = defaultdict(list)
    names = list(sets)
    for _ in range(HALVINGS):
        halves = {
            name: np.array_split(generator.permutation(len(sets[name][1])), 2) for name in names
        }
        for fit_half, read_half in ((0, 1), (1, 0)):
            rows = {name: halves[name][fit_half] for name in names}
            logits = torch.cat([sets[name][0][rows[name]] for name in names])
            labels = torch.cat([sets[name][1][rows[name]] for name in names])
            which = torch.cat([torch.full((len(rows[name]),), i) for i, name in enumerate(names)])
            for rule, target in rules:
                fitted = fit_calibration(logits, labels, target, which, rule)
                for name in names:
                    read = halves[name][read_half]
                    read_logits, read_labels = sets[name][0][read], sets[name][1][read]
                    confidence, digit = (read_logits / fitted.temperature).softmax(-1).max(-1)
                    sure = confidence >= fitted.threshold
                    wrong = int((digit[sure] != read_labels[sure]).sum())
                    found[f"{rule} {target:.2%}", name].append((len(read), int(sure.sum()), wrong))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--targets", type=float, nargs="*", default=[0.001, 0.002])
    parser.add_argument("--counted", type=float, nargs="*", default=[])
    args = parser.parse_args()
    rules: list[tuple[ThresholdRule, float]] = [("expected", target) for target in args.targets]
    rules += [("counted", target) for target in args.counted]
    generator = np.random.default_rng(0)
    found: Found = defaultdict(list)
    for path in args.checkpoints:
        for key, halves in held_out_readings(
            validation_sets(load_trained(path)), rules, generator
        ).items():
            found[key] += halves
    print(f"{len(args.checkpoints)} checkpoints, {HALVINGS} halvings each way")
    print("| rule | validation set | sure: mean | 5th percentile | lowest | sure ones wrong |")
    print("|---|---|---|---|---|---|")
    for (rule_name, name), halves in found.items():
        counts = np.array(halves)
        coverage = counts[:, 1] / counts[:, 0]
        wrong, sure = counts[:, 2].sum(), counts[:, 1].sum()
        print(
            f"| {rule_name} | {name} | {coverage.mean():.3f} | {np.quantile(coverage, 0.05):.3f}"
            f" | {coverage.min():.3f} | {wrong / max(sure, 1):.2%} ({wrong} of {sure}) |"
        )


if __name__ == "__main__":
    main()
