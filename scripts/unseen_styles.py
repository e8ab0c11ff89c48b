"""How a config reads pen digits written in styles it never trained on.

The project's pen digits are 30 writers' and keep no writer per row, so no split of them
holds writers out, and the 14 writers of UCI's test part are not in the project. Styles
can be held out instead: each digit's pen paths are grouped into ``--styles`` styles
(k-means on their 16 coordinates, seeded), two of each digit's styles are kept out of
training, and the run is read on them with the temperature and threshold it fitted on
the styles it saw. This is harsher than new writers (a held-out style may be one that no
training writer used), and it uses no test split: a way to compare recipes for how they
carry over to people, on training data alone.

The config's ``PenDigits`` source is replaced by ``HeldOutStyles`` with the same
arguments; everything else trains as the config says, in its own run folder.

Usage::

    python scripts/unseen_styles.py --config configs/best.yaml --split_seeds 0,1
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np
import yaml

from digits.dataset import DigitsSplits, Split
from digits.people.pen_digits import (
    PenDigits,
    drawn_rows,
    other_writers_rows,
    read_pen_digits,
)

STYLES = 8  # per digit
HELD_OUT = 2  # of them, per digit


@functools.cache
def style_split(styles: int = STYLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the styles kept for training, and rows of the styles held out."""
    from sklearn.cluster import KMeans

    points, labels = read_pen_digits()
    paths = points.reshape(len(points), -1)
    held: list[int] = []
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        style = KMeans(styles, n_init=4, random_state=seed).fit(paths[rows]).labels_
        chosen = np.random.default_rng(seed + digit).choice(styles, HELD_OUT, replace=False)
        held += rows[np.isin(style, chosen)].tolist()
    held_rows = np.array(sorted(held))
    return np.setdiff1d(np.arange(len(labels)), held_rows), held_rows


class HeldOutStyles(PenDigits):
    """``PenDigits`` whose training and validation rows are the kept styles' (90% / 10%,
    by the split seed) and whose test rows are the held-out styles'."""

    def arrays(self, split: Split, splits: DigitsSplits) -> tuple[np.ndarray, np.ndarray]:
        kept, held = style_split()
        shuffled = np.random.default_rng(splits.split_seed).permutation(kept)
        cut = len(kept) // 10
        val_rows, train_rows = np.sort(shuffled[:cut]), np.sort(shuffled[cut:])
        rows = {"train": train_rows, "val": val_rows, "test": held}[split]
        pixels, labels = drawn_rows(tuple(rows.tolist()))
        if split != "train" or self.variants == 1:
            return pixels, labels
        changes = (self.slant, self.rotation, self.stretch)
        others = [
            other_writers_rows(tuple(rows.tolist()), 1_000 + number, changes)
            for number in range(1, self.variants)
        ]
        return np.concatenate([pixels, *others]), np.concatenate([labels] * self.variants)


def coverage_at(confidence: np.ndarray, right: np.ndarray, error: float) -> float:
    """The largest share of readings, surest first, of which at most ``error`` are wrong."""
    order = np.argsort(-confidence)
    rate = np.cumsum(~right[order]) / np.arange(1, len(order) + 1)
    within = np.flatnonzero(rate <= error)
    return float((within.max() + 1) / len(order)) if len(within) else 0.0


def sources_with_held_out_styles(configs: list[str]) -> list[dict]:
    """The configs' ``data.sources`` (the last config that names them), ``PenDigits`` replaced."""
    sources: list[dict] = []
    for path in configs:
        data = (yaml.safe_load(Path(path).read_text()) or {}).get("data") or {}
        sources = data.get("sources", sources)
    pen_digits = f"{PenDigits.__module__}.{PenDigits.__qualname__}"
    if not any(source.get("class_path") == pen_digits for source in sources):
        raise SystemExit("error: the config trains on no PenDigits source")
    return [
        {**source, "class_path": "unseen_styles.HeldOutStyles"}
        if source.get("class_path") == pen_digits
        else source
        for source in sources
    ]


def measure(configs: list[str], split_seed: int) -> dict[str, float]:
    """Train the configs with the held-out styles as the drawn test set; read them."""
    from digits.fit import main as fit
    from digits.reading.trained import load_trained

    sources = sources_with_held_out_styles(configs)
    args = [arg for path in configs for arg in ("--config", path)]
    args += ["--data.sources", json.dumps(sources), "--data.split_seed", str(split_seed)]
    summary = fit([*args, "--trainer.enable_progress_bar", "false"])
    trained = load_trained(summary.checkpoint)
    _, held = style_split()
    pixels, labels = drawn_rows(tuple(held.tolist()))
    # What the threshold is compared with: the probability, or 0 for an image the run's
    # DeclineUnfamiliar callback (where it has one) finds unlike every training digit.
    probabilities, confidence = trained.probabilities_and_sureness(pixels)
    read = probabilities.argmax(axis=1)
    right = read == labels
    sure = confidence >= trained.threshold
    probable = probabilities.max(axis=1) >= trained.threshold  # the probability alone
    return {
        "split_seed": split_seed,
        "held_out_rows": len(labels),
        "accuracy": float(right.mean()),
        "worst_digit": float(min(right[labels == digit].mean() for digit in range(10))),
        "coverage": float(sure.mean()),
        "sure_accuracy": float(right[sure].mean()) if sure.any() else 1.0,
        "coverage_at_0.5%_error": coverage_at(confidence, right, 0.005),
        "coverage_probability_alone": float(probable.mean()),
        "sure_accuracy_probability_alone": float(right[probable].mean()) if probable.any() else 1.0,
        "checkpoint": summary.checkpoint,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", default=[], help="digits.fit configs")
    parser.add_argument("--split_seeds", default="0", help="e.g. 0,1")
    options = parser.parse_args()
    results = [measure(options.config, int(seed)) for seed in options.split_seeds.split(",")]
    for result in results:
        print(json.dumps(result))
    keys = [key for key in results[0] if key not in ("split_seed", "checkpoint", "held_out_rows")]
    print("mean  " + "  ".join(f"{key} {np.mean([r[key] for r in results]):.4f}" for key in keys))


if __name__ == "__main__":
    main()
