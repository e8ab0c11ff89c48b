"""Which ``--calibrate.rule`` and ``target_error`` to give a config, chosen on validation alone.

The threshold of "sure" is fitted on the validation images, so reading those same images
would flatter it. This fits the temperature and the threshold on a random half of each
validation set of each checkpoint given, reads the other half, and does so for 20
halvings, each half in turn. For each target it prints, per validation set, the share of
the held-out half answered as sure (mean, 5th percentile, lowest) and how many of those
sure readings are wrong, for the two rules of ``--calibrate.rule``: mistakes expected
from the calibrated probabilities at each of ``--targets``, and mistakes counted on the
labels at each of ``--counted``::

    python scripts/threshold_target.py lightning_logs/best/version_*/checkpoints/epoch035.ckpt \\
        --targets 0.0015 0.002 0.0025 --counted 0.0025

Give it checkpoints of split seeds that the final figures are not measured on.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import torch

from digits.dataset import DigitsSplits
from digits.people.drawn import drawn_splits_of
from digits.reading.sure import counted_threshold, expected_threshold, fit_temperature
from digits.reading.trained import TrainedNetwork, load_trained

HALVINGS = 20


def validation_sets(trained: TrainedNetwork) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each validation set the run was calibrated on: its logits (unscaled) and labels."""
    arrays = {
        "load_digits": DigitsSplits.from_settings(trained.data_settings).arrays("val", scaled=False)
    }
    sources = [source["class_path"] for source in trained.data_settings.get("sources", [])]
    if any(path.endswith("PenDigits") for path in sources):
        arrays["drawn"] = drawn_splits_of(trained).arrays("val")
    return {
        name: (trained.calibrated_logits(pixels) * trained.temperature, torch.from_numpy(labels))
        for name, (pixels, labels) in arrays.items()
    }


Rule = Callable[[torch.Tensor, torch.Tensor], float]


def held_out_readings(
    sets: dict[str, tuple[torch.Tensor, torch.Tensor]],
    rules: dict[str, Rule],
    generator: np.random.Generator,
) -> dict[tuple[str, str], list[tuple[int, int, int]]]:
    """(rule, set) -> (readings, sure ones, wrong sure ones) of each held-out half."""
    found: dict[tuple[str, str], list[tuple[int, int, int]]] = defaultdict(list)
    for _ in range(HALVINGS):
        halves = {
            name: np.array_split(generator.permutation(len(y)), 2) for name, (_, y) in sets.items()
        }
        for fit_half, read_half in ((0, 1), (1, 0)):
            fit = {
                name: (logits[halves[name][fit_half]], y[halves[name][fit_half]])
                for name, (logits, y) in sets.items()
            }
            temperature = fit_temperature(
                torch.cat([logits for logits, _ in fit.values()]),
                torch.cat([y for _, y in fit.values()]),
            )
            for rule_name, rule in rules.items():
                threshold = max(
                    rule((logits / temperature).softmax(-1), y) for logits, y in fit.values()
                )
                for name, (logits, y) in sets.items():
                    rows = halves[name][read_half]
                    confidence, digit = (logits[rows] / temperature).softmax(-1).max(-1)
                    sure = confidence >= threshold
                    wrong = int((digit[sure] != y[rows][sure]).sum())
                    found[rule_name, name].append((len(rows), int(sure.sum()), wrong))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.001, 0.0015, 0.002, 0.0025])
    parser.add_argument("--counted", type=float, nargs="*", default=[])
    args = parser.parse_args()
    rules: dict[str, Rule] = {
        f"expected {target:.2%}": lambda p, y, target=target: expected_threshold(p, target)
        for target in args.targets
    }
    rules |= {
        f"counted {target:.2%}": lambda p, y, target=target: counted_threshold(p, y, target)
        for target in args.counted
    }
    generator = np.random.default_rng(0)
    found: dict[tuple[str, str], list[tuple[int, int, int]]] = defaultdict(list)
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
