"""What a second "sure" gate on the log-sum-exp of the logits would change (not built).

The log-sum-exp of the calibrated logits is minus the energy of Liu et al. (2020): the
network's total evidence for any digit. It is low for an image unlike every training
digit even where one class wins the softmax, so it may decline non-digits of a family
the network never trained on. The gate declines, on top of the probability threshold,
every image whose log-sum-exp is below that of the lowest ``share`` of each validation
set's digits (the lowest of the sets' own cut-offs), so it is fitted on validation alone.

For each checkpoint and share (0 is the probability threshold alone, as built), prints
the share of each family of generated non-digits answered "not sure" (the measuring
seed, as ``python -m digits.drawn``), the drawn test digits answered as sure and how many
of those are right, and the same for the data set's test digits. docs/sure.md has the
figures.

Usage::

    python scripts/energy_gate.py CKPT [CKPT ...] --shares 0.03,0.05 --count 300
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from digits.dataset import DigitsSplits
from digits.people.drawn import drawn_splits_of, non_digit_rows
from digits.people.non_digits import MEASURING_SEED, non_digit_pixels
from digits.reading.trained import TrainedNetwork, load_trained


def read_with_log_sum_exp(
    trained: TrainedNetwork, pixels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 64) pixels in 0..16 -> the calibrated probabilities and their log-sum-exp."""
    logits = trained.calibrated_logits(pixels)
    return logits.softmax(dim=-1).numpy(), torch.logsumexp(logits, dim=-1).numpy()


def read_checkpoint(ckpt_path: str, shares: list[float], count: int) -> None:
    trained = load_trained(ckpt_path)
    splits = DigitsSplits.from_settings(trained.data_settings)
    drawn = drawn_splits_of(trained)
    validation = [splits.arrays("val", scaled=False), drawn.arrays("val")]
    validation_lse = [read_with_log_sum_exp(trained, pixels)[1] for pixels, _ in validation]
    tested = {}
    for name, (pixels, labels) in {
        "drawn test": drawn.arrays("test"),
        "load_digits test": splits.arrays("test", scaled=False),
    }.items():
        tested[name] = (labels, *read_with_log_sum_exp(trained, pixels))
    families = {
        family: read_with_log_sum_exp(
            trained, non_digit_pixels(count, MEASURING_SEED, (family,), rows)
        )
        for family, rows in non_digit_rows(trained).items()
    }
    print(f"{ckpt_path}: threshold {trained.threshold:.4f}, temperature {trained.temperature:.3f}")
    for share in [0.0, *shares]:
        floor = min(float(np.quantile(lse, share)) for lse in validation_lse) if share else -np.inf

        def sure(probabilities: np.ndarray, lse: np.ndarray, floor: float = floor) -> np.ndarray:
            return (probabilities.max(axis=1) >= trained.threshold) & (lse >= floor)

        not_sure = {family: float((~sure(*read)).mean()) for family, read in families.items()}
        words = [f"share {share:.2f}"]
        for name, (labels, probabilities, lse) in tested.items():
            chosen = sure(probabilities, lse)
            right = probabilities.argmax(axis=1) == labels
            accuracy = right[chosen].mean() if chosen.any() else float("nan")
            words.append(f"{name} sure {chosen.mean():.3f}, right {accuracy:.4f}")
        words.append(f"non-digits not sure {np.mean(list(not_sure.values())):.3f}")
        print("  " + "; ".join(words))
        print("    " + ", ".join(f"{family} {value:.3f}" for family, value in not_sure.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--shares", default="0.03,0.05", help="comma-separated, e.g. 0.03,0.05")
    parser.add_argument("--count", type=int, default=100, help="non-digits of each family")
    args = parser.parse_args()
    shares = [float(share) for share in args.shares.split(",") if share]
    for ckpt_path in args.checkpoints:
        read_checkpoint(ckpt_path, shares, args.count)


if __name__ == "__main__":
    main()
