"""How large the test ECE of a perfectly calibrated model would look on the test split.

The expected calibration error is estimated from a few hundred test images, and an
estimate from so few is biased upwards: even a model whose probabilities are exactly
right shows an ECE above zero. This trains the default config (or the ``--config``
given) on split seeds 0..4 (or the ``--split_seeds`` given), and for each compares the
measured test ECE with the ECE of the same probabilities when each reading is right
exactly as often as its probability says (labels drawn 300 times from the model's own
probabilities)::

    python scripts/ece_floor.py
    python scripts/ece_floor.py --config configs/best.yaml --split_seeds 10-19
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from digits.dataset import DigitsSplits
from digits.fit import main as fit
from digits.reading.sure import expected_calibration_error as ece
from digits.reading.trained import load_trained

DRAWS = 300


def perfectly_calibrated_ece(probabilities: torch.Tensor, seed: int) -> list[float]:
    """The ECE of these probabilities when each top reading is right with its probability."""
    generator = torch.Generator().manual_seed(seed)
    top, predicted = probabilities.max(dim=1)
    classes = probabilities.shape[1]
    values = []
    for _ in range(DRAWS):
        right = torch.rand(len(top), generator=generator) < top
        wrong_label = (
            predicted + torch.randint(1, classes, (len(top),), generator=generator)
        ) % classes
        values.append(ece(probabilities, torch.where(right, predicted, wrong_label)))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="a digits.fit config (default: the default config)")
    parser.add_argument(
        "--split_seeds",
        "--split-seeds",
        default="5",
        help="N for split seeds 0..N-1, or a range such as 10-19",
    )
    options = parser.parse_args()
    first, _, last = options.split_seeds.partition("-")
    seeds = range(int(first), int(last) + 1) if last else range(int(first))
    rows = []
    for split_seed in seeds:
        args = ["--data.split_seed", str(split_seed), "--trainer.enable_progress_bar", "false"]
        summary = fit([*(["--config", options.config] if options.config else []), *args])
        network = load_trained(summary.checkpoint)
        pixels, labels = DigitsSplits.from_settings(network.data_settings).arrays(
            "test", scaled=False
        )
        probabilities = torch.from_numpy(network.probabilities(pixels))
        floor = perfectly_calibrated_ece(probabilities, split_seed)
        measured = ece(probabilities, torch.from_numpy(labels))
        rows.append((measured, float(np.mean(floor)), float(np.percentile(floor, 90))))
        print(
            f"split {split_seed}: measured {measured:.4f}, perfectly calibrated {rows[-1][1]:.4f}"
        )
    measured, floor, high = np.mean(rows, axis=0)
    print(
        f"mean: measured test ECE {measured:.4f}; a perfectly calibrated model with these "
        f"probabilities would show {floor:.4f} (90th percentile {high:.4f})"
    )


if __name__ == "__main__":
    main()
