"""Second "sure" gates on scores that need no outlier family, measured at several shares.

The ``neighbours`` score at a share chosen here on validation is what
``digits.training.familiar.DeclineUnfamiliar`` builds into a run (``configs/best.yaml``);
this script measures any score and share on checkpoints without retraining them.

Two scores, each high for an image like the training digits and low for one unlike
them, even where one digit wins the softmax:

- ``log_sum_exp``: the log-sum-exp of the calibrated logits, minus the energy of Liu et
  al. (2020): the network's total evidence for any digit.
- ``neighbours``: minus the distance from the image's features (the network's
  ``features`` block where it has one, a ConvNet's convolutions; otherwise the input of
  its last layer), scaled to length 1, to its ``k``-th nearest training digit's (Sun et
  al., 2022). The training digits are the data set's training split and the pen digits'
  training rows: drawn once, as the page draws them (``--bank drawn``), or as the run
  trained on them, with its ``PenDigits`` drawings by other writers (``--bank trained``).

The gate declines, on top of the probability threshold, every image whose score is below
that of the lowest ``share`` of each validation set's digits (the lowest of the sets'
own cut-offs), so it is fitted on validation alone.

For each checkpoint, score and share (0 is the probability threshold alone),
prints the share of each family of generated non-digits answered "not sure" (the
measuring seed, as ``python -m digits.drawn``; a family marked ``*`` is one the
checkpoint never trained on), the drawn test digits answered as sure and how many of
those are right, and the same for the data set's test digits. With ``--split val`` it
reads the validation digits instead, and non-digits of a seed that neither training nor
measuring uses, made of the validation rows: what a share is chosen on. docs/sure.md
has the figures.

Usage::

    python scripts/second_gate.py CKPT [CKPT ...] --scores log_sum_exp,neighbours \
        --shares 0.03,0.05 --count 300 [--bank trained] [--split val]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch

from digits.dataset import DigitsSplits
from digits.extras import settings_of
from digits.people.drawn import drawn_splits_of, non_digit_rows
from digits.people.non_digits import MEASURING_SEED, families_trained_on, non_digit_pixels
from digits.people.pen_digits import PenDigits
from digits.reading.familiar import features_and_logits as network_features_and_logits
from digits.reading.familiar import neighbour_distances
from digits.reading.trained import TrainedNetwork, load_trained

NEIGHBOUR = 10  # the k of the k-th nearest training digit
Score = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # pixels -> probabilities, score
BANKS = ("drawn", "trained")  # the pen digits among the neighbours: once, or as trained on
CHOOSING_SEED = 3  # non-digits for choosing on validation: neither training's nor measuring's


def features_and_logits(
    trained: TrainedNetwork, pixels: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 64) pixels in 0..16 -> features scaled to length 1, and the calibrated logits."""
    with torch.no_grad():
        return network_features_and_logits(
            trained.network,
            trained.inputs(pixels),
            lambda inputs: trained.network(inputs) / trained.temperature,
        )


def log_sum_exp_score(trained: TrainedNetwork) -> Score:
    def score(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits = trained.calibrated_logits(pixels)
        return logits.softmax(dim=-1).numpy(), torch.logsumexp(logits, dim=-1).numpy()

    return score


def pen_digits_trained_on(trained: TrainedNetwork) -> PenDigits:
    """The run's ``PenDigits`` source as its config built it; a run without one is refused,
    since no bank would hold the pen digits as it trained on them."""
    for arguments in settings_of(trained.data_settings, PenDigits):
        return PenDigits(**arguments)
    name = f"{PenDigits.__module__}.{PenDigits.__qualname__}"
    raise SystemExit(f"error: --bank trained needs a run trained on a {name} source")


def neighbours_score(trained: TrainedNetwork, bank: str = "drawn") -> Score:
    splits = DigitsSplits.from_settings(trained.data_settings)
    pen_digits = (
        pen_digits_trained_on(trained).arrays("train", splits)[0]
        if bank == "trained"
        else drawn_splits_of(trained).arrays("train")[0]
    )
    training = np.concatenate([splits.arrays("train", scaled=False)[0], pen_digits])
    training_features, _ = features_and_logits(trained, training)

    def score(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, logits = features_and_logits(trained, pixels)
        distance = neighbour_distances(features, training_features, NEIGHBOUR)
        return logits.softmax(dim=-1).numpy(), (-distance).numpy()

    return score


SCORES = {"log_sum_exp": log_sum_exp_score, "neighbours": neighbours_score}


def measure_checkpoint(
    ckpt_path: str,
    scores: list[str],
    shares: list[float],
    count: int,
    bank: str = "drawn",
    split: str = "test",
) -> None:
    trained = load_trained(ckpt_path)
    splits = DigitsSplits.from_settings(trained.data_settings)
    drawn = drawn_splits_of(trained)
    trained_on = families_trained_on(trained.data_settings)
    print(f"{ckpt_path}: threshold {trained.threshold:.4f}, temperature {trained.temperature:.3f}")
    for name in scores:
        read = neighbours_score(trained, bank) if name == "neighbours" else SCORES[name](trained)
        validation = [read(splits.arrays("val", scaled=False)[0]), read(drawn.arrays("val")[0])]
        tested = {
            set_name: (labels, *read(pixels))
            for set_name, (pixels, labels) in {
                f"drawn {split}": drawn.arrays(split),
                f"load_digits {split}": splits.arrays(split, scaled=False),
            }.items()
        }
        seed = MEASURING_SEED if split == "test" else CHOOSING_SEED
        families = {
            family: read(non_digit_pixels(count, seed, (family,), rows))
            for family, rows in non_digit_rows(trained, split).items()
        }
        for share in [0.0, *shares]:
            floor = (
                min(float(np.quantile(s, share, method="lower")) for _, s in validation)
                if share
                else -np.inf
            )

            def sure(probabilities: np.ndarray, score: np.ndarray, floor=floor) -> np.ndarray:
                return (probabilities.max(axis=1) >= trained.threshold) & (score >= floor)

            not_sure = {
                family: float((~sure(*scored)).mean()) for family, scored in families.items()
            }
            never = [value for family, value in not_sure.items() if family not in trained_on]
            label = f"{name} ({bank})" if name == "neighbours" else name
            words = [f"{label} share {share:.3f}"]
            for set_name, (labels, probabilities, score) in tested.items():
                chosen = sure(probabilities, score)
                right = probabilities.argmax(axis=1) == labels
                accuracy = right[chosen].mean() if chosen.any() else float("nan")
                words.append(f"{set_name} sure {chosen.mean():.3f}, right {accuracy:.4f}")
            words.append(f"non-digits not sure {np.mean(list(not_sure.values())):.3f}")
            if never:
                words.append(f"never trained on {np.mean(never):.3f}")
            print("  " + "; ".join(words))
            print(
                "    "
                + ", ".join(
                    f"{family}{'' if family in trained_on else '*'} {value:.3f}"
                    for family, value in not_sure.items()
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--scores", default="log_sum_exp,neighbours", help=", ".join(SCORES))
    parser.add_argument("--shares", default="0.03,0.05", help="comma-separated, e.g. 0.03,0.05")
    parser.add_argument("--count", type=int, default=100, help="non-digits of each family")
    parser.add_argument(
        "--bank",
        choices=BANKS,
        default="drawn",
        help="neighbours only: the pen digits they are found among, drawn once or as trained on",
    )
    parser.add_argument(
        "--split",
        choices=("test", "val"),
        default="test",
        help="measure on the test rows and the measuring non-digits, or, to choose a share, "
        "on the validation rows and non-digits of another seed",
    )
    args = parser.parse_args()
    scores = [score for score in args.scores.split(",") if score]
    unknown = sorted(set(scores) - set(SCORES))
    if unknown:
        parser.error(f"no score {', '.join(unknown)}: choose from {', '.join(SCORES)}")
    shares = [float(share) for share in args.shares.split(",") if share]
    for ckpt_path in args.checkpoints:
        measure_checkpoint(ckpt_path, scores, shares, args.count, args.bank, args.split)


if __name__ == "__main__":
    main()
