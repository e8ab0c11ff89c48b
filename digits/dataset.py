"""The data set itself, without Lightning: scikit-learn's 8x8 digits, split and scaled.

``DigitsSplits`` decides which images are training, validation and test images and how
pixels are scaled for the network. The Lightning data module (``digits.data``) trains
from it; the scikit-learn baselines and the tools that read a checkpoint (predict,
export, serve) use it directly, so they agree with training image for image and do not
pay for importing Lightning.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Scale = Literal["raw", "standard", "unit"]
Split = Literal["train", "val", "test"]
MAX_PIXEL = 16.0  # load_digits' pixels are counts of ink in 4x4 blocks: 0..16
NUM_PIXELS = 64  # 8 x 8
# DigitsSplits' arguments: the data settings that decide which image is in which split,
# and how pixels are scaled.
SPLIT_SETTINGS = ("test_size", "val_size", "split_seed", "scale", "folds", "fold")


@functools.cache
def load() -> tuple[np.ndarray, np.ndarray]:
    """Every image as a float32 row of 64 pixels in 0..16, and its int64 label."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    images, labels = images.astype(np.float32), labels.astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False  # shared by every caller
    return images, labels


def num_classes() -> int:
    """Distinct labels in the data set (0..9)."""
    return int(load()[1].max()) + 1


@dataclass(frozen=True)
class Scaling:
    """``(pixels - mean) / std``, the network's view of 0..16 pixels."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fixed(cls, scale: Scale) -> Scaling:
        """``raw`` is the identity, ``unit`` divides by 16: nothing to fit."""
        spread = MAX_PIXEL if scale == "unit" else 1.0
        return cls(np.zeros(NUM_PIXELS, np.float32), np.full(NUM_PIXELS, spread, np.float32))

    @classmethod
    def standardise(cls, train_images: np.ndarray) -> Scaling:
        """Each pixel's mean and deviation over the training images (never the test images')."""
        mean, std = train_images.mean(axis=0), train_images.std(axis=0)
        # Border pixels are always 0 in training: keep them at 0 instead of 0/0.
        std[std == 0] = 1.0
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((np.asarray(images, dtype=np.float32) - self.mean) / self.std)


class DigitsSplits:
    """Train, validation and test images of ``load_digits``, stratified by label.

    The test split is drawn first (``test_size`` of all images, seeded by
    ``split_seed``); it depends on nothing else. Validation is then either
    ``val_size`` of the rest, or, with ``folds``, fold number ``fold`` of the rest cut
    into that many stratified folds, so that ``folds`` runs validate every non-test
    image exactly once (cross-validation).
    """

    def __init__(
        self,
        test_size: float = 0.25,
        val_size: float = 0.1,
        split_seed: int = 0,
        scale: Scale = "raw",
        folds: int | None = None,
        fold: int = 0,
    ) -> None:
        for name, fraction in (("test_size", test_size), ("val_size", val_size)):
            if not 0 < fraction < 1:
                raise ValueError(f"data.{name} must be between 0 and 1, got {fraction}")
        if not 0 <= split_seed < 2**32:  # what scikit-learn takes as a random_state
            raise ValueError(f"data.split_seed must be 0 to 2**32 - 1, got {split_seed}")
        if folds is not None and folds < 2:
            raise ValueError(f"data.folds must be at least 2 (or null for no folds), got {folds}")
        if not 0 <= fold < (folds or 1):
            raise ValueError(f"data.fold must be 0 to folds - 1, got {fold} with folds={folds}")
        self.test_size, self.val_size, self.split_seed = test_size, val_size, split_seed
        self.scale, self.folds, self.fold = scale, folds, fold

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> DigitsSplits:
        """From a data module's settings (a config's ``data``, a checkpoint's), others ignored."""
        return cls(**{key: value for key, value in settings.items() if key in SPLIT_SETTINGS})

    @functools.cached_property
    def indices(self) -> dict[Split, np.ndarray]:
        """Row numbers into ``load()`` of each split."""
        try:
            return self._split()
        except ValueError as error:
            raise ValueError(
                f"data.test_size={self.test_size} and data.val_size={self.val_size} leave a "
                f"split too small to hold every class ({error})"
            ) from None

    def _split(self) -> dict[Split, np.ndarray]:
        return stratified_split(
            load()[1], self.test_size, self.val_size, self.split_seed, self.folds, self.fold
        )

    @functools.cached_property
    def scaling(self) -> Scaling:
        """Fitted on the training split only, where there is anything to fit."""
        if self.scale == "standard":
            return Scaling.standardise(load()[0][self.indices["train"]])
        return Scaling.fixed(self.scale)

    def arrays(self, split: Split, scaled: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """A split's images (as the network sees them, or in 0..16) and labels."""
        images, labels = load()
        rows = self.indices[split]
        return (self.scaling(images[rows]) if scaled else images[rows]), labels[rows]


def stratified_split(
    labels: np.ndarray,
    test_size: float,
    val_size: float,
    seed: int,
    folds: int | None = None,
    fold: int = 0,
) -> dict[Split, np.ndarray]:
    """Row numbers of each split, every label in each split in its overall proportion.

    The test split is drawn first and depends only on ``test_size`` and ``seed``; the
    rest is cut into training and validation, or, with ``folds``, into that many folds
    of which fold ``fold`` validates.
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    rest, test = train_test_split(
        np.arange(len(labels)), test_size=test_size, stratify=labels, random_state=seed
    )
    if folds is None:
        train, val = train_test_split(
            rest, test_size=val_size, stratify=labels[rest], random_state=seed
        )
    else:
        cut = StratifiedKFold(folds, shuffle=True, random_state=seed)
        train_rows, val_rows = list(cut.split(rest, labels[rest]))[fold]
        train, val = rest[train_rows], rest[val_rows]
    return {"train": train, "val": val, "test": test}
