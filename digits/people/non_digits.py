"""Things drawn on the page that are not digits: scribbles, dashes, crosses and blobs.

A network trained on digits alone names a digit for anything; its top probability says
nothing about whether there is a digit at all. Shown generated non-digits with a uniform
target during training (outlier exposure, Hendrycks et al., 2019), it learns to spread
its probabilities over all ten when what it sees is unlike every digit, so that "not
sure" catches them. The same generator, with another seed, measures how often random
scribbles are caught (``python -m digits.drawn``).

Every shape is a pen path drawn as the page draws (``digits.people.pen_digits.draw``, the
hands of ``digits.people.pen_digits.hands``) and read through the page's preprocessing. What a
person may mean as a digit is left out: straight strokes near the upright or slanted as
pen ones are (those are ones), and single closed loops (zeros).
"""

from __future__ import annotations

import functools

import numpy as np

from digits.dataset import DigitsSplits, Split, num_classes
from digits.extras import DataSource
from digits.people.pen_digits import COORDINATE_MAX, cached_pixels, drawn_pixels, hands

KINDS = ("scribble", "dash", "cross", "blob")
# Scribbles come in endless shapes, the others in few: training shows twice as many.
TRAINING_KINDS = ("scribble", "dash", "scribble", "cross", "blob")
TRAINING_SEED = 1  # the non-digits shown in training
MEASURING_SEED = 2  # others, never trained on, for measuring


def scribble(generator: np.random.Generator) -> list[np.ndarray]:
    """A random walk of sharp turns, the way one fills a box with a restless pen."""
    count = int(generator.integers(9, 17))
    return [np.cumsum(generator.normal(0, 1, (count, 2)), axis=0)]


def dash(generator: np.random.Generator) -> list[np.ndarray]:
    """One straight stroke, near the horizontal: a minus, not a one."""
    angle = np.deg2rad(generator.uniform(-20, 20))
    half = generator.uniform(20, 50) * np.array([np.cos(angle), np.sin(angle)])
    centre = generator.uniform(30, 70, 2)
    return [np.stack([centre - half, centre + half])]


def cross(generator: np.random.Generator) -> list[np.ndarray]:
    """Two strokes crossing in the middle, as an x or a plus."""
    strokes = []
    tilt = generator.uniform(0, np.pi / 2)
    for angle in (tilt, tilt + np.pi / 2):
        half = generator.uniform(25, 50) * np.array([np.cos(angle), np.sin(angle)])
        strokes.append(np.stack([50 - half, 50 + half]))
    return strokes


def blob(generator: np.random.Generator) -> list[np.ndarray]:
    """A filled-in patch: tight strokes back and forth over a small area."""
    count = int(generator.integers(8, 16))
    return [generator.normal(0, 1, (count, 2)) * [1.0, generator.uniform(0.5, 1.0)]]


MAKERS = {"scribble": scribble, "dash": dash, "cross": cross, "blob": blob}


def non_digits(count: int, seed: int, kinds: tuple[str, ...] = KINDS) -> tuple[list, list[str]]:
    """``count`` shapes, the kinds in turn: each a list of strokes in pen-digit coordinates.

    Each shape is scaled as a pen digit is, its longer side running from 0 to 100.
    """
    generator = np.random.default_rng(seed)
    chosen = [kinds[i % len(kinds)] for i in range(count)]
    return [fill_the_box(MAKERS[kind](generator)) for kind in chosen], chosen


def fill_the_box(strokes: list[np.ndarray]) -> list[np.ndarray]:
    """Strokes moved and scaled together so that their longer side spans 0..100, centred."""
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = COORDINATE_MAX / max(float((high - low).max()), 1e-9)
    offset = (COORDINATE_MAX - (high - low) * scale) / 2
    return [(stroke - low) * scale + offset for stroke in strokes]


@functools.cache
def non_digit_pixels(count: int, seed: int, kinds: tuple[str, ...] = KINDS) -> np.ndarray:
    """The shapes drawn with people's hands and read as the page reads a drawing: (N, 64)."""

    def draw_them() -> np.ndarray:
        shapes, _ = non_digits(count, seed, kinds)
        return drawn_pixels(shapes, hands(count, seed))

    return cached_pixels(f"non-digits-{count}-{seed}-{'-'.join(kinds)}", draw_them)


class NonDigits(DataSource):
    """Generated non-digits for training (outlier exposure), each with a spread target.

    A non-digit's target is the uniform distribution times ``weight`` (``weight / 10``
    for each digit), so that its cross-entropy is ``weight`` times the mean of
    ``-log p`` over the digits (Hendrycks et al., 2019); the model's loss is plain
    cross-entropy, which takes a distribution as target.

    Args:
        count: How many non-digits join the training images.
        weight: How much a non-digit's loss counts beside a digit's.
    """

    def __init__(self, count: int = 1000, weight: float = 0.5) -> None:
        if count < 1:
            raise ValueError(f"NonDigits.count must be at least 1, got {count}")
        if weight < 0:
            raise ValueError(f"NonDigits.weight must be 0 or more, got {weight}")
        self.count, self.weight = count, weight

    def arrays(self, split: Split, splits: DigitsSplits) -> tuple[np.ndarray, np.ndarray] | None:
        if split != "train":
            return None
        pixels = non_digit_pixels(self.count, TRAINING_SEED, TRAINING_KINDS)
        classes = num_classes()  # the data set's
        targets = np.full((len(pixels), classes), self.weight / classes, dtype=np.float32)
        return pixels, targets
