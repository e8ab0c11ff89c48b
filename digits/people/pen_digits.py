"""Digits written with a pen by other people, drawn the way the page draws them.

``load_digits`` holds 13 writers' digits, scanned from forms. A model that learns only
those reads their handwriting and few others': people who draw on the page write
uncrossed sevens, ones with and without a flag, open fours. The project carries UCI's
pen-based digits (30 writers; ``digits/people/pendigits/README.md`` has the source and the
licence) to measure that, and to train on it.

Each pen digit is 8 points along the pen's path (y up, both sides scaled to 0..100).
``draw`` puts it on a canvas as the page does: 280x280, white, a round black pen, the
points joined by straight strokes. ``hands`` decides how big, where and with how wide a
pen each digit is drawn, the way people differ at the page; ``DrawnSplits`` cuts the
rows into training, validation and test rows and makes each into the data set's 64
pixels through ``digits.people.preprocess``, exactly as a drawing sent to the server is.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digits.dataset import DigitsSplits, Split, stratified_split
from digits.extras import DataSource
from digits.paths import write_then_rename
from digits.people.preprocess import image_to_digit

if TYPE_CHECKING:
    from PIL.Image import Image

CANVAS_SIDE = 280  # the page's canvas, in its own pixels
PAGE_PEN = 28  # the page's pen width
POINTS = 8  # per digit, along the pen's path
COORDINATE_MAX = 100  # each side of a pen digit runs from 0 to this
# How people differ at the page (canvas pixels): how tall they draw a digit and how
# wide a pen they use; ``hands`` draws each from these ranges.
HEIGHTS = (120.0, 240.0)
PENS = (18.0, 38.0)
DRAWING_SEED = 0  # one fixed hand per row, so every model is measured on the same drawings
VARIANT_SEED = 1_000  # the hands and changes of a training row's further drawings start here


@functools.cache
def read_pen_digits(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each digit's 8 points, shape (N, 8, 2), and its label; the project's copy by default.

    A file of the same format (UCI's 16 coordinates and the digit per row, with or
    without a header) may be given instead, such as the writers of UCI's test part.
    """
    source = (
        files("digits.people").joinpath("pendigits/pendigits-train.csv") if path is None else path
    )
    try:
        text = source.read_text() if path is None else open(path).read()  # noqa: SIM115
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and not lines[0].lstrip()[:1].isdigit():
        lines = lines[1:]  # the header
    try:
        table = np.array([[int(value) for value in line.split(",")] for line in lines])
    except ValueError:
        raise ValueError(f"{path or source}: expected rows of 17 whole numbers") from None
    if table.ndim != 2 or table.shape[1] != 2 * POINTS + 1 or len(table) == 0:
        raise ValueError(f"{path or source}: expected rows of 16 coordinates and a digit")
    labels = table[:, -1]
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path or source}: the last column must be a digit 0..9")
    points = table[:, :-1].reshape(-1, POINTS, 2).astype(np.float32)
    points.flags.writeable = labels.flags.writeable = False  # shared by every caller
    return points, labels.astype(np.int64)


@dataclass(frozen=True)
class Hand:
    """How one digit is drawn on the page: its height, its centre and the pen's width."""

    height: float = 200.0
    centre_x: float = CANVAS_SIDE / 2
    centre_y: float = CANVAS_SIDE / 2
    pen: float = PAGE_PEN


def hands(count: int, seed: int = DRAWING_SEED) -> list[Hand]:
    """``count`` hands as people differ: size and pen width, anywhere on the canvas."""
    generator = np.random.default_rng(seed)
    heights = generator.uniform(*HEIGHTS, count)
    pens = generator.uniform(*PENS, count)
    room = (CANVAS_SIDE - heights - pens) / 2  # how far the centre may move, still on the canvas
    offsets = generator.uniform(-1, 1, (2, count)) * room
    centre = CANVAS_SIDE / 2
    return [
        Hand(float(height), float(centre + dx), float(centre + dy), float(pen))
        for height, dx, dy, pen in zip(heights, offsets[0], offsets[1], pens, strict=True)
    ]


def page_path(points: np.ndarray, hand: Hand = Hand()) -> np.ndarray:
    """The digit's points in canvas pixels (y down), as a hand at the page would move."""
    unit = np.asarray(points, dtype=np.float64) / COORDINATE_MAX - 0.5  # -0.5..0.5, y up
    return np.column_stack(
        (hand.centre_x + unit[:, 0] * hand.height, hand.centre_y - unit[:, 1] * hand.height)
    )


def draw(strokes: np.ndarray | list[np.ndarray], hand: Hand = Hand()) -> Image:
    """A white canvas with the strokes drawn by a round pen, each through its points.

    ``strokes`` is one (K, 2) array of points (a pen digit is one stroke) or a list of
    them, in pen-digit coordinates (0..100, y up).
    """
    from PIL import Image as PILImage
    from PIL import ImageDraw

    canvas = PILImage.new("L", (CANVAS_SIDE, CANVAS_SIDE), 255)
    pen = ImageDraw.Draw(canvas)
    radius = hand.pen / 2
    for stroke in [strokes] if isinstance(strokes, np.ndarray) else strokes:
        path = [tuple(point) for point in page_path(stroke, hand)]
        pen.line(path, fill=0, width=round(hand.pen), joint="curve")
        for x, y in (path[0], path[-1]):  # the round caps at both ends
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
    return canvas


def drawn_pixels(points: np.ndarray | list, hand_list: list[Hand]) -> np.ndarray:
    """Each drawn with its hand and read as the server reads a drawing: (N, 64) in 0..16."""
    if len(points) == 0:
        return np.zeros((0, 64), dtype=np.float32)
    pixels = [
        image_to_digit(draw(digit, hand)) for digit, hand in zip(points, hand_list, strict=True)
    ]
    return np.stack(pixels).astype(np.float32)


class DrawnSplits:
    """The pen digits cut into training, validation and test rows, drawn and read.

    Stratified by label with the data set's own fractions and seed, so that a run's
    ``split_seed`` decides both splits. Each row is always drawn with the same hand
    (``hands(N, DRAWING_SEED)``), so that every model is measured on the same drawings.
    """

    def __init__(self, test_size: float = 0.25, val_size: float = 0.1, split_seed: int = 0) -> None:
        self.test_size, self.val_size, self.split_seed = test_size, val_size, split_seed

    @functools.cached_property
    def indices(self) -> dict[Split, np.ndarray]:
        labels = read_pen_digits()[1]
        return stratified_split(labels, self.test_size, self.val_size, self.split_seed)

    def arrays(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        """A split's drawings as (N, 64) pixels in 0..16, and their labels."""
        return drawn_rows(tuple(self.indices[split].tolist()))


class PenDigits(DataSource):
    """The pen digits as a data source: their training rows join training, and their
    validation and test rows are a set of their own, ``drawn`` (``val/drawn_acc``).

    Cut with the data set's own split settings (``DrawnSplits``). Thirty writers made
    these rows; the people at the page are others, who slant, turn and stretch their
    digits their own way. With ``variants`` above 1, each training row is drawn that
    many times: once as the page would draw it, then each time by another hand, its pen
    path slanted, turned and stretched a little (``as_another_writer``), so that the
    network learns the digit rather than its 30 writers' way of writing it. Validation
    and test rows are drawn once, as they always are.

    Args:
        variants: How many drawings of each training row (1: the row as it is).
        slant: The largest shear along x, as a share of the height, either way.
        rotation: The largest turn, in degrees, either way.
        stretch: The largest change of the width, as a share, either way.
    """

    name = "drawn"

    def __init__(
        self, variants: int = 1, slant: float = 0.3, rotation: float = 10.0, stretch: float = 0.15
    ) -> None:
        if variants < 1:
            raise ValueError(f"PenDigits.variants must be at least 1, got {variants}")
        if slant < 0 or rotation < 0 or not 0 <= stretch < 1:
            raise ValueError("PenDigits.slant and rotation must be 0 or more, stretch 0 to 1")
        self.variants, self.slant, self.rotation, self.stretch = variants, slant, rotation, stretch

    def arrays(self, split: Split, splits: DigitsSplits) -> tuple[np.ndarray, np.ndarray]:
        drawn = DrawnSplits(splits.test_size, splits.val_size, splits.split_seed)
        pixels, labels = drawn.arrays(split)
        if split != "train" or self.variants == 1:
            return pixels, labels
        rows = drawn.indices["train"]
        changes = (self.slant, self.rotation, self.stretch)
        others = [
            other_writers_rows(tuple(rows.tolist()), VARIANT_SEED + number, changes)
            for number in range(1, self.variants)
        ]
        return np.concatenate([pixels, *others]), np.concatenate([labels] * self.variants)

    def prepare(self, split: Split, splits: DigitsSplits) -> None:
        self.arrays(split, splits)  # drawn into the cache (``cached_pixels``)


def as_another_writer(
    points: np.ndarray, generator: np.random.Generator, changes: tuple[float, float, float]
) -> np.ndarray:
    """Pen digits (N, 8, 2) slanted, turned and stretched at random, scaled back to 0..100."""
    slant, rotation, stretch = changes
    changed = []
    for path in np.asarray(points, dtype=np.float64):
        angle = np.deg2rad(generator.uniform(-rotation, rotation))
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        shear = np.array([[1.0, generator.uniform(-slant, slant)], [0.0, 1.0]])
        widen = np.diag([generator.uniform(1 - stretch, 1 + stretch), 1.0])
        moved = (path - path.mean(axis=0)) @ (turn @ shear @ widen).T
        low, high = moved.min(axis=0), moved.max(axis=0)
        moved = (moved - low) * (COORDINATE_MAX / max(float((high - low).max()), 1e-9))
        changed.append(moved + (COORDINATE_MAX - moved.max(axis=0)) / 2)  # centred
    return np.stack(changed)


@functools.cache
def other_writers_rows(
    rows: tuple[int, ...], seed: int, changes: tuple[float, float, float]
) -> np.ndarray:
    """The pen digits at ``rows``, each changed as another writer would write it and
    drawn by another hand (both from ``seed``), read as the page reads: (N, 64)."""
    points, _ = read_pen_digits()
    chosen = np.asarray(rows, dtype=np.int64)

    def draw_them() -> np.ndarray:
        changed = as_another_writer(points[chosen], np.random.default_rng(seed), changes)
        return drawn_pixels(changed, hands(len(chosen), seed))

    digest = hashlib.sha256(chosen.tobytes() + repr(changes).encode()).hexdigest()
    return cached_pixels(f"variants-{seed}-{digest}", draw_them)


@functools.cache
def drawn_rows(rows: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The project's pen digits at ``rows``, drawn with their own hands and read."""
    points, labels = read_pen_digits()
    chosen = np.asarray(rows, dtype=np.int64)

    def draw_them() -> np.ndarray:
        every_hand = hands(len(labels))
        return drawn_pixels(points[chosen], [every_hand[row] for row in rows])

    rows_digest = hashlib.sha256(chosen.tobytes()).hexdigest()
    return cached_pixels(f"drawn-{rows_digest}", draw_them), labels[chosen]


def cached_pixels(name: str, draw_them: Callable[[], np.ndarray]) -> np.ndarray:
    """``draw_them()``, kept on disk (``cache_folder()``) for the next run.

    Drawing and reading thousands of shapes takes seconds. The file's name holds a hash
    of everything the pixels depend on: ``name`` (what is drawn), the pen digits, the
    code that draws and reads them, and the versions of the libraries that draw, resample
    and thicken (Pillow, SciPy, NumPy), so a changed drawing is never read stale.
    """
    digest = hashlib.sha256(name.encode())
    digest.update(files("digits.people").joinpath("pendigits/pendigits-train.csv").read_bytes())
    for module in ("preprocess", "pen_digits", "non_digits"):
        digest.update(files("digits.people").joinpath(f"{module}.py").read_bytes())
    for library in ("pillow", "scipy", "numpy"):
        digest.update(f"{library} {version(library)}".encode())
    cached = cache_folder() / f"{name.split('-')[0]}-{digest.hexdigest()[:20]}.npy"
    try:
        pixels = np.load(cached, allow_pickle=False)
    except (OSError, ValueError):
        pixels = draw_them()
        _save_quietly(pixels, cached)
    pixels.flags.writeable = False
    return pixels


def cache_folder() -> Path:
    """``$DIGITS_CACHE``, or ``digits`` in the user's cache folder (``~/.cache``)."""
    if "DIGITS_CACHE" in os.environ:
        return Path(os.environ["DIGITS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "digits"


def _save_quietly(pixels: np.ndarray, path: Path) -> None:
    """Written whole or not at all (``write_then_rename``), so a reader never sees half a file.

    A cache that cannot be written (a read-only home) only costs the next run the time.
    """
    with contextlib.suppress(OSError):
        write_then_rename(path, lambda file: np.save(file, pixels, allow_pickle=False))
