"""Things drawn on the page that are not digits, in families: scribbles, letters, shapes...

A network trained on digits alone names a digit for anything; its top probability says
nothing about whether there is a digit at all. Shown generated non-digits with a uniform
target during training (outlier exposure, Hendrycks et al., 2019), it learns to spread
its probabilities over all ten when what it sees is unlike every digit, so that "not
sure" catches them.

What it learns from one family need not carry over to another: trained on random walks
alone, it read a tangle of long straight strokes as an 8 with probability 1.00. So the
non-digits come in families (``FAMILIES``), a run trains on the ones it names, and
``python -m digits.drawn`` measures every family, saying which ones the checkpoint never
trained on: those say how "not sure" carries over to what nobody generated.

Every shape is a list of pen strokes in pen-digit coordinates (0..100, y up), drawn as
the page draws (``digits.people.pen_digits.draw``, the hands of
``digits.people.pen_digits.hands``) and read through the page's preprocessing. What a
person may mean as a digit is left out: straight strokes near the upright or slanted as
pen ones are (those are ones), single closed loops (zeros), and the parts of a one.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from digits.dataset import DigitsSplits, Split, num_classes
from digits.extras import DataSource, settings_of
from digits.people.pen_digits import (
    COORDINATE_MAX,
    DrawnSplits,
    cached_pixels,
    drawn_pixels,
    hands,
    read_pen_digits,
)

Shape = list[np.ndarray]  # strokes, each (K, 2) points
PenRows = tuple[np.ndarray, np.ndarray]  # pen digits' points (N, 8, 2) and labels
# The first four are what the project trained on before there were families; a
# scribble comes in endless shapes, so that list shows twice as many of them.
TRAINING_KINDS = ("scribble", "dash", "scribble", "cross", "blob")
TRAINING_SEED = 1  # the non-digits shown in training
MEASURING_SEED = 2  # others, never trained on, for measuring
# A stroke much narrower than long that stands more than this far from the horizontal is
# a one (pen ones are upright or slanted strokes), not a non-digit; a flatter one is a dash.
THINNEST = 0.3  # narrower than this share of its length
FLATTEST_ONE = 30.0  # degrees from the horizontal


def scribble(generator: np.random.Generator, rows: PenRows) -> Shape:
    """A random walk of sharp turns, the way one fills a box with a restless pen."""
    count = int(generator.integers(9, 17))
    return [np.cumsum(generator.normal(0, 1, (count, 2)), axis=0)]


def dash(generator: np.random.Generator, rows: PenRows) -> Shape:
    """One straight stroke, near the horizontal: a minus, not a one."""
    angle = np.deg2rad(generator.uniform(-20, 20))
    half = generator.uniform(20, 50) * np.array([np.cos(angle), np.sin(angle)])
    centre = generator.uniform(30, 70, 2)
    return [np.stack([centre - half, centre + half])]


def cross(generator: np.random.Generator, rows: PenRows) -> Shape:
    """Two strokes crossing in the middle, as an x or a plus."""
    strokes = []
    tilt = generator.uniform(0, np.pi / 2)
    for angle in (tilt, tilt + np.pi / 2):
        half = generator.uniform(25, 50) * np.array([np.cos(angle), np.sin(angle)])
        strokes.append(np.stack([50 - half, 50 + half]))
    return strokes


def blob(generator: np.random.Generator, rows: PenRows) -> Shape:
    """A filled-in patch: tight strokes back and forth over a small area."""
    count = int(generator.integers(8, 16))
    return [generator.normal(0, 1, (count, 2)) * [1.0, generator.uniform(0.5, 1.0)]]


def polyline(generator: np.random.Generator, rows: PenRows) -> Shape:
    """Five to eight points anywhere in the box, joined: long straight strokes that tangle."""
    return [generator.uniform(0, COORDINATE_MAX, (int(generator.integers(5, 9)), 2))]


# Capital letters that are no digit's shape (no O, I, S, Z, B, G, Q, L...), as strokes
# in a 100 x 100 box, y up.
LETTERS: dict[str, list[list[tuple[float, float]]]] = {
    "A": [[(0, 0), (50, 100), (100, 0)], [(22, 45), (78, 45)]],
    "E": [[(90, 100), (0, 100), (0, 0), (90, 0)], [(0, 50), (70, 50)]],
    "F": [[(90, 100), (0, 100), (0, 0)], [(0, 50), (70, 50)]],
    "H": [[(0, 100), (0, 0)], [(80, 100), (80, 0)], [(0, 50), (80, 50)]],
    "K": [[(0, 100), (0, 0)], [(80, 100), (0, 45), (80, 0)]],
    "M": [[(0, 0), (0, 100), (50, 35), (100, 100), (100, 0)]],
    "N": [[(0, 0), (0, 100), (80, 0), (80, 100)]],
    "R": [
        [(0, 0), (0, 100), (60, 100), (80, 85), (80, 65), (60, 50), (0, 50)],
        [(30, 50), (85, 0)],
    ],
    "W": [[(0, 100), (25, 0), (50, 60), (75, 0), (100, 100)]],
    "X": [[(0, 0), (100, 100)], [(0, 100), (100, 0)]],
    "#": [[(30, 0), (30, 100)], [(70, 0), (70, 100)], [(0, 30), (100, 30)], [(0, 70), (100, 70)]],
    "&": [[(100, 0), (20, 70), (35, 100), (60, 90), (0, 30), (20, 0), (60, 10), (100, 50)]],
}


def letter(generator: np.random.Generator, rows: PenRows) -> Shape:
    """A capital letter or sign that is no digit (A, E, F, H, K, M, N, R, W, X, #, &)."""
    strokes = LETTERS[list(LETTERS)[int(generator.integers(len(LETTERS)))]]
    return jittered([np.array(stroke, dtype=np.float64) for stroke in strokes], generator)


def regular_polygon(corners: int, step: int = 1) -> np.ndarray:
    """A closed path through ``corners`` points on a circle, ``step`` corners at a time."""
    angles = np.pi / 2 + 2 * np.pi * step * np.arange(corners + 1) / corners
    return 50 + 50 * np.column_stack((np.cos(angles), np.sin(angles)))


SHAPES: dict[str, Callable[[], list[np.ndarray]]] = {
    "triangle": lambda: [regular_polygon(3)],
    "star": lambda: [regular_polygon(5, step=2)],
    "arrow": lambda: [np.array([[0, 50], [100, 50]]), np.array([[65, 85], [100, 50], [65, 15]])],
    "zigzag": lambda: [np.array([[0, 0], [20, 100], [40, 0], [60, 100], [80, 0], [100, 100]])],
    "grid": lambda: [np.array([[0, 0], [100, 0], [100, 100], [0, 100], [0, 0], [100, 100]])],
}


def shape(generator: np.random.Generator, rows: PenRows) -> Shape:
    """A drawn figure: a triangle, star, arrow, zigzag or a crossed box."""
    strokes = SHAPES[list(SHAPES)[int(generator.integers(len(SHAPES)))]]()
    return jittered(strokes, generator)


def partial(generator: np.random.Generator, rows: PenRows) -> Shape:
    """The first or last part (35 to 60%) of a pen digit's path: a digit left unfinished."""
    points, labels = rows
    if (labels == 1).all():
        raise ValueError("partial digits need pen digits other than ones")
    while True:
        row = int(generator.integers(len(labels)))
        if labels[row] != 1:  # part of a one is a shorter one
            break
    share = generator.uniform(0.35, 0.6)
    path = points[row] if generator.random() < 0.5 else points[row][::-1]  # its start or end
    return [along_path(path, share)]


def pair(generator: np.random.Generator, rows: PenRows) -> Shape:
    """Two pen digits side by side: a number, not a digit."""
    points, _ = rows
    first, second = generator.integers(len(points), size=2)
    left = points[first] * [0.45, 1.0]
    right = points[second] * [0.45, 1.0] + [55, 0]
    return [left, right]


def overlap(generator: np.random.Generator, rows: PenRows) -> Shape:
    """Two different pen digits drawn over each other in one box: a tangle of digit strokes."""
    points, labels = rows
    if len(set(labels.tolist()) - {1}) < 2:
        raise ValueError("overlaps need pen digits of two different digits other than one")
    while True:
        first, second = generator.integers(len(labels), size=2)
        if labels[first] != labels[second] and 1 not in (labels[first], labels[second]):
            return [points[first], points[second]]


def hatch(generator: np.random.Generator, rows: PenRows) -> Shape:
    """Two to four parallel strokes at any angle: ruled lines, bars, hatching."""
    count = int(generator.integers(2, 5))
    angle = generator.uniform(0, np.pi)
    along = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-along[1], along[0]])
    gap = generator.uniform(25, 40)  # apart, so that two upright ones are no thick one
    return [
        np.stack(
            [50 + across * gap * (k - (count - 1) / 2) + sign * 45 * along for sign in (-1, 1)]
        )
        + generator.normal(0, 3, (2, 2))
        for k in range(count)
    ]


def dots(generator: np.random.Generator, rows: PenRows) -> Shape:
    """Three to six dots scattered over the box, each a tiny stroke."""
    centres = generator.uniform(0, COORDINATE_MAX, (int(generator.integers(3, 7)), 2))
    return [np.stack([centre, centre + generator.normal(0, 2, 2)]) for centre in centres]


def wave(generator: np.random.Generator, rows: PenRows) -> Shape:
    """A wavy line of two to four crests across the box: a long tilde, or a sea."""
    crests = generator.uniform(2, 4)
    across = np.linspace(0, COORDINATE_MAX, 48)
    height = generator.uniform(10, 25)
    phase = generator.uniform(0, 2 * np.pi)
    up = 50 + height * np.sin(2 * np.pi * crests * across / COORDINATE_MAX + phase)
    return jittered([np.column_stack((across, up))], generator)


def spiral(generator: np.random.Generator, rows: PenRows) -> Shape:
    """A spiral of two to three turns, from the middle outwards, either way: a snail's shell."""
    turns = generator.uniform(2, 3)
    angles = np.linspace(0, 2 * np.pi * turns, 72) * generator.choice([-1, 1])
    radius = 50 * np.abs(angles) / np.abs(angles[-1])
    path = 50 + radius[:, None] * np.column_stack((np.cos(angles), np.sin(angles)))
    return jittered([path], generator)


def tick(generator: np.random.Generator, rows: PenRows) -> Shape:
    """A tick, as a box is ticked: a short stroke down, then a long one up to the right."""
    bottom = np.array([35.0, 0.0])
    start = bottom + np.array([-generator.uniform(20, 35), generator.uniform(25, 45)])
    end = bottom + np.array([generator.uniform(50, 65), generator.uniform(70, 100)])
    return jittered([np.stack([start, bottom, end])], generator)


MAKERS: dict[str, Callable[[np.random.Generator, PenRows], Shape]] = {
    "scribble": scribble,
    "dash": dash,
    "cross": cross,
    "blob": blob,
    "polyline": polyline,
    "letter": letter,
    "shape": shape,
    "partial": partial,
    "pair": pair,
    "overlap": overlap,
    "hatch": hatch,
    "dots": dots,
    "wave": wave,
    "spiral": spiral,
    "tick": tick,
}
FAMILIES = tuple(MAKERS)
MADE_OF_PEN_DIGITS = ("partial", "pair", "overlap")


def jittered(strokes: list[np.ndarray], generator: np.random.Generator) -> Shape:
    """Strokes as a hand draws them: turned a little, wider or narrower, points off by a few."""
    angle = np.deg2rad(generator.uniform(-12, 12))
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    stretch = np.array([generator.uniform(0.75, 1.25), 1.0])
    return [
        (stroke * stretch) @ turn.T + generator.normal(0, 3, stroke.shape) for stroke in strokes
    ]


def along_path(points: np.ndarray, share: float) -> np.ndarray:
    """The first ``share`` of the path through ``points``, by its length."""
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    reach = np.concatenate([[0.0], np.cumsum(steps)])
    end = share * reach[-1]
    kept = points[reach < end]
    last = int(np.searchsorted(reach, end))
    if last >= len(points):
        return points
    fraction = (end - reach[last - 1]) / max(steps[last - 1], 1e-9)
    return np.vstack([kept, points[last - 1] + fraction * (points[last] - points[last - 1])])


def looks_like_a_one(strokes: Shape) -> bool:
    """Whether the shape is a thin stroke standing up or slanted, as a pen one is."""
    points = np.concatenate(strokes)
    spreads, axes = np.linalg.eigh(np.cov((points - points.mean(axis=0)).T))
    if np.sqrt(max(spreads[0], 0.0)) >= THINNEST * np.sqrt(spreads[1]):
        return False
    along = axes[:, 1]  # the direction of the longer spread
    return bool(np.degrees(np.arctan2(abs(along[1]), abs(along[0]))) > FLATTEST_ONE)


def non_digits(
    count: int, seed: int, kinds: Sequence[str] = FAMILIES, rows: PenRows | None = None
) -> tuple[list[Shape], list[str]]:
    """``count`` shapes, the kinds in turn: each a list of strokes in pen-digit coordinates.

    Each shape is scaled as a pen digit is, its longer side running from 0 to 100.
    ``rows`` are the pen digits the families of ``MADE_OF_PEN_DIGITS`` are made of (by
    default, all of the project's).
    """
    generator = np.random.default_rng(seed)
    pen_rows = read_pen_digits() if rows is None else rows
    chosen = [kinds[i % len(kinds)] for i in range(count)]
    return [fill_the_box(not_a_one(MAKERS[kind], generator, pen_rows)) for kind in chosen], chosen


def not_a_one(
    maker: Callable[[np.random.Generator, PenRows], Shape],
    generator: np.random.Generator,
    rows: PenRows,
) -> Shape:
    """A shape from ``maker``, drawn again while it would be read as a one."""
    while looks_like_a_one(shape := maker(generator, rows)):
        pass
    return shape


def fill_the_box(strokes: Shape) -> Shape:
    """Strokes moved and scaled together so that their longer side spans 0..100, centred."""
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = COORDINATE_MAX / max(float((high - low).max()), 1e-9)
    offset = (COORDINATE_MAX - (high - low) * scale) / 2
    return [(stroke - low) * scale + offset for stroke in strokes]


def families_trained_on(data_settings: dict) -> list[str]:
    """The non-digit families a run's data settings (a config's ``data``) train on."""
    trained = [
        kind
        for arguments in settings_of(data_settings, NonDigits)
        for kind in arguments.get("kinds", TRAINING_KINDS)
    ]
    return list(dict.fromkeys(trained))


def check_kinds(kinds: Sequence[str]) -> None:
    unknown = sorted(set(kinds) - set(FAMILIES))
    if not kinds or unknown:
        raise ValueError(
            f"non-digit families must be some of {', '.join(FAMILIES)}; got {list(kinds)}"
        )


def pen_rows_at(rows: Sequence[int] | None) -> PenRows:
    """The project's pen digits at ``rows`` (all of them for ``None``): points and labels."""
    points, labels = read_pen_digits()
    if rows is None:
        return points, labels
    chosen = np.asarray(rows, dtype=np.int64)
    return points[chosen], labels[chosen]


@functools.cache
def _non_digit_pixels(
    count: int, seed: int, kinds: tuple[str, ...], rows: tuple[int, ...] | None
) -> np.ndarray:
    def draw_them() -> np.ndarray:
        shapes, _ = non_digits(count, seed, kinds, pen_rows_at(rows))
        return drawn_pixels(shapes, hands(count, seed))

    rows_digest = (
        "all"
        if rows is None
        else hashlib.sha256(np.asarray(rows, dtype=np.int64).tobytes()).hexdigest()[:16]
    )
    return cached_pixels(f"non-digits-{count}-{seed}-{'-'.join(kinds)}-{rows_digest}", draw_them)


def non_digit_pixels(
    count: int, seed: int, kinds: Sequence[str] = FAMILIES, rows: Sequence[int] | None = None
) -> np.ndarray:
    """The shapes drawn with people's hands and read as the page reads a drawing: (N, 64).

    ``rows``: which of the project's pen digits ``MADE_OF_PEN_DIGITS`` are made of.
    """
    return _non_digit_pixels(count, seed, tuple(kinds), None if rows is None else tuple(rows))


class NonDigits(DataSource):
    """Generated non-digits for training (outlier exposure), each with a spread target.

    A non-digit's target is the uniform distribution times ``weight`` (``weight / 10``
    for each digit), so that its cross-entropy is ``weight`` times the mean of
    ``-log p`` over the digits (Hendrycks et al., 2019); the model's loss is plain
    cross-entropy, which takes a distribution as target.

    Args:
        count: How many non-digits join the training images.
        weight: How much a non-digit's loss counts beside a digit's.
        kinds: The families to draw, in turn (``FAMILIES``; a family named twice is
            drawn twice as often). Those made of pen digits take them from the pen
            digits' training rows only.
    """

    def __init__(
        self, count: int = 1000, weight: float = 0.5, kinds: Sequence[str] = TRAINING_KINDS
    ) -> None:
        if count < 1:
            raise ValueError(f"NonDigits.count must be at least 1, got {count}")
        if weight < 0:
            raise ValueError(f"NonDigits.weight must be 0 or more, got {weight}")
        check_kinds(kinds)
        self.count, self.weight, self.kinds = count, weight, list(kinds)

    def arrays(self, split: Split, splits: DigitsSplits) -> tuple[np.ndarray, np.ndarray] | None:
        if split != "train":
            return None
        rows = None
        if set(self.kinds) & set(MADE_OF_PEN_DIGITS):
            drawn = DrawnSplits(splits.test_size, splits.val_size, splits.split_seed)
            rows = sorted(drawn.indices["train"].tolist())
        pixels = non_digit_pixels(self.count, TRAINING_SEED, self.kinds, rows)
        classes = num_classes()  # the data set's
        targets = np.full((len(pixels), classes), self.weight / classes, dtype=np.float32)
        return pixels, targets

    def prepare(self, split: Split, splits: DigitsSplits) -> None:
        self.arrays(split, splits)  # drawn into the cache (``cached_pixels``)
