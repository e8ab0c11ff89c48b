"""How well a checkpoint reads digits that people drew: pen digits, drawn as the page draws.

The data set's test split says how well a model reads the 13 writers it learned from.
This says how it reads other people: pen digits (``digits.people.pen_digits``) drawn on the page's
280x280 canvas at the sizes, positions and pen widths people use, and read through the
server's own preprocessing. It prints the accuracy, overall and digit by digit, and
writes the confusion matrix and the misread drawings as pictures.

By default it reads the project's pen digits that the checkpoint's split keeps for
testing (a run with the pen digits as a source never trained or chose anything on them,
but they are by the same 30 writers as the rows it trained on: new digits by known
people); ``--rows`` picks another part, and ``--pen_digits FILE`` reads every row of
another file in UCI's format, such as UCI's own test part, by 14 writers no run here
trained on: how it reads people it never saw.

Usage::

    python -m digits.drawn --ckpt_path RUN/checkpoints/CKPT
    python -m digits.drawn --ckpt_path CKPT --pen_digits pendigits-test.csv --json
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from jsonargparse import ArgumentParser

from digits.dataset import Split
from digits.errors import reading_the_command_line
from digits.paths import check_can_hold_files, check_not_there, unused_path
from digits.people.non_digits import (
    FAMILIES,
    MADE_OF_PEN_DIGITS,
    MEASURING_SEED,
    families_trained_on,
    non_digit_pixels,
    non_digits,
    pen_rows_at,
)
from digits.people.pen_digits import (
    DrawnSplits,
    Hand,
    draw,
    drawn_pixels,
    hands,
    read_pen_digits,
)
from digits.reading.sure import expected_calibration_error
from digits.reading.trained import (
    TrainedNetwork,
    add_threshold_argument,
    check_threshold,
    load_trained,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Rows = Literal["test", "val", "train", "all"]
MAX_MISREAD_SHOWN = 60
NON_DIGITS_PER_FAMILY = 100  # generated non-digits of each family read to measure "not sure"
THUMBNAIL = 64  # pixels per drawing in the picture of misread digits


@dataclass(frozen=True)
class DrawnScore:
    """What ``python -m digits.drawn`` measured."""

    source: str
    count: int
    accuracy: float
    per_digit: list[float]  # the share of each digit read right, 0 to 9
    confusion_matrix: list[list[int]]  # true digit down, read digit across
    ece: float  # top-label expected calibration error, 15 bins
    temperature: float
    threshold: float  # a reading is sure from this probability on
    coverage: float  # the share of drawn digits answered as sure
    sure_accuracy: float  # the share of those read right
    non_digits: int  # generated non-digits drawn as the page draws, of every family
    non_digits_not_sure: float  # the share of them answered "not sure"
    not_sure_by_family: dict[str, float]
    trained_on: list[str]  # the families the checkpoint was trained on
    not_sure_never_trained_on: float | None  # the share over the other families
    pictures: dict[str, str]
    # Whether images unlike every training digit are never sure (DeclineUnfamiliar).
    declines_unfamiliar: bool = False

    def lines(self) -> list[str]:
        digits = "  ".join(f"{digit:>5}" for digit in range(10))
        shares = "  ".join(f"{share:5.3f}" for share in self.per_digit)
        families = ", ".join(
            f"{family}{'' if family in self.trained_on else '*'} {share:.2f}"
            for family, share in self.not_sure_by_family.items()
        )
        never = self.not_sure_never_trained_on
        return [
            f"drawn digits  {self.count} ({self.source})",
            f"accuracy      {self.accuracy:.4f}",
            f"digit         {digits}",
            f"read right    {shares}",
            f"calibration   ece {self.ece:.4f} (temperature {self.temperature:.3f})",
            f"sure          probability >= {self.threshold:.4f}"
            + (" and like a training digit" if self.declines_unfamiliar else "")
            + f": {self.coverage:.1%} of the drawn digits answered, {self.sure_accuracy:.2%} "
            "of those right",
            f"non-digits    {self.non_digits} generated: {self.non_digits_not_sure:.1%} not sure "
            f"({families}"
            + (f"; * never trained on: {never:.1%} not sure)" if never is not None else ")"),
            *(f"{name:<13} {path}" for name, path in self.pictures.items()),
        ]


@dataclass(frozen=True)
class Drawings:
    """Pen digits to read: their points, labels and hands, and where they came from."""

    points: np.ndarray
    labels: np.ndarray
    hands: list[Hand]
    source: str

    def pixels(self) -> np.ndarray:
        return drawn_pixels(self.points, self.hands)


def choose_drawings(trained: TrainedNetwork, rows: Rows, pen_digits: str | None) -> Drawings:
    """The rows to read: another file's, or a part of the project's by the checkpoint's split."""
    if pen_digits is not None:
        try:
            points, labels = read_pen_digits(pen_digits)
        except UnicodeDecodeError:  # a .npy, say: Python's words would not name the file
            raise ValueError(
                f"{pen_digits}: not a text file; expected rows of 16 coordinates and a digit "
                "(UCI pen digits' CSV)"
            ) from None
        return Drawings(points, labels, hands(len(labels)), f"every row of {pen_digits}")
    points, labels = read_pen_digits()
    every_hand = hands(len(labels))
    if rows == "all":
        return Drawings(points, labels, every_hand, "every row of the project's pen digits")
    splits = drawn_splits_of(trained)
    chosen = splits.indices[rows]
    seed = splits.split_seed
    return Drawings(
        points[chosen],
        labels[chosen],
        [every_hand[row] for row in chosen],
        f"the {rows} rows of the project's pen digits, split seed {seed}",
    )


def drawn_splits_of(trained: TrainedNetwork) -> DrawnSplits:
    """The pen digits cut as the checkpoint's run cut them."""
    split_keys = ("test_size", "val_size", "split_seed")  # DrawnSplits' own arguments
    settings = trained.data_settings
    return DrawnSplits(**{key: settings[key] for key in split_keys if key in settings})


def score(
    trained: TrainedNetwork, drawings: Drawings, output: Path, threshold: float | None = None
) -> DrawnScore:
    """Read every drawing and the non-digits; the numbers, and the pictures in ``output``."""
    from sklearn.metrics import confusion_matrix

    limit = trained.threshold if threshold is None else threshold
    pixels = drawings.pixels()
    probabilities, confidence = trained.probabilities_and_sureness(pixels)
    read = probabilities.argmax(axis=1)
    labels = drawings.labels
    matrix = confusion_matrix(labels, read, labels=list(range(10)))
    per_digit = [float(matrix[d, d] / max(matrix[d].sum(), 1)) for d in range(10)]
    ece = expected_calibration_error(torch.from_numpy(probabilities), torch.from_numpy(labels))
    sure = confidence >= limit
    rows_by_family = non_digit_rows(trained)
    families = non_digit_probabilities(trained, rows_by_family)
    tops = {family: sureness for family, (_, sureness) in families.items()}
    by_family = {family: float((top < limit).mean()) for family, top in tops.items()}
    trained_on = families_trained_on(trained.data_settings)
    never = [share for family, share in by_family.items() if family not in trained_on]
    every_non_digit = np.concatenate(list(tops.values()))
    pictures = write_pictures(drawings, pixels, read, labels, output)
    pictures["non_digits"] = str(write_sure_non_digits(rows_by_family, families, limit, output))
    pictures["thresholds"] = str(
        write_coverage_curve(confidence, read == labels, every_non_digit, limit, output)
    )
    return DrawnScore(
        source=drawings.source,
        count=len(labels),
        accuracy=float((read == labels).mean()),
        per_digit=per_digit,
        confusion_matrix=matrix.tolist(),
        ece=ece,
        temperature=trained.temperature,
        threshold=limit,
        coverage=float(sure.mean()),
        sure_accuracy=float((read == labels)[sure].mean()) if sure.any() else 1.0,
        non_digits=len(every_non_digit),
        non_digits_not_sure=float((every_non_digit < limit).mean()),
        not_sure_by_family=by_family,
        trained_on=trained_on,
        not_sure_never_trained_on=float(np.mean(never)) if never else None,
        pictures=pictures,
        declines_unfamiliar=trained.familiarity is not None,
    )


def non_digit_probabilities(
    trained: TrainedNetwork, rows_by_family: dict[str, list[int] | None]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each family's generated non-digits (another seed than training's), read: (N, 10)
    probabilities and (N,) what the threshold is compared with.

    The families made of pen digits take the rows ``non_digit_rows`` gives them.
    """
    return {
        family: trained.probabilities_and_sureness(
            non_digit_pixels(NON_DIGITS_PER_FAMILY, MEASURING_SEED, (family,), rows)
        )
        for family, rows in rows_by_family.items()
    }


def non_digit_rows(trained: TrainedNetwork, split: Split = "test") -> dict[str, list[int] | None]:
    """Per family, the pen-digit rows it is made of (the checkpoint's ``split`` rows of
    them, its test rows for measuring), or ``None``."""
    rows = sorted(drawn_splits_of(trained).indices[split].tolist())
    return {family: rows if family in MADE_OF_PEN_DIGITS else None for family in FAMILIES}


def write_sure_non_digits(
    rows_by_family: dict[str, list[int] | None],
    families: dict[str, tuple[np.ndarray, np.ndarray]],
    limit: float,
    output: Path,
) -> Path:
    """The generated non-digits read as sure digits, as drawn, each with what it was read as."""
    canvases, seen, titles = [], [], []
    for family, rows in rows_by_family.items():
        probabilities, sureness = families[family]
        top = probabilities.max(axis=1)
        sure = np.flatnonzero(sureness >= limit)
        if not len(sure):
            continue
        pen_rows = pen_rows_at(rows)
        shapes, _ = non_digits(NON_DIGITS_PER_FAMILY, MEASURING_SEED, (family,), pen_rows)
        every_hand = hands(NON_DIGITS_PER_FAMILY, MEASURING_SEED)
        pixels = non_digit_pixels(NON_DIGITS_PER_FAMILY, MEASURING_SEED, (family,), rows)
        for index in sure[: MAX_MISREAD_SHOWN // len(FAMILIES)]:
            canvases.append(draw(shapes[index], every_hand[index]))
            seen.append(pixels[index])
            reading = int(probabilities[index].argmax())
            titles.append(f"{family}: {reading} {top[index]:.2f}")
    path = output / "non_digits_sure.png"
    shown = np.stack(seen) if seen else np.zeros((0, 64), dtype=np.float32)
    misread_figure(canvases, shown, titles).savefig(path, dpi=100, bbox_inches="tight")
    return path


def write_coverage_curve(
    confidence: np.ndarray,
    right: np.ndarray,
    non_digit_confidence: np.ndarray,
    threshold: float,
    output: Path,
) -> Path:
    """Risk against coverage: what each threshold answers, and how right those answers are."""
    from matplotlib.figure import Figure

    thresholds = np.linspace(0, 1, 201)
    sure = confidence[None, :] >= thresholds[:, None]
    answered = sure.mean(axis=1)
    right_share = np.where(
        sure.any(axis=1), (sure & right[None, :]).sum(axis=1) / np.maximum(sure.sum(axis=1), 1), 1.0
    )
    non_digits_answered = (non_digit_confidence[None, :] >= thresholds[:, None]).mean(axis=1)
    figure = Figure(figsize=(6.5, 4.5), dpi=100)
    axes = figure.add_subplot()
    axes.plot(thresholds, answered, label="drawn digits answered as sure (coverage)")
    axes.plot(thresholds, right_share, label="of those, the share read right")
    axes.plot(thresholds, non_digits_answered, label="non-digits answered as sure")
    axes.axvline(threshold, color="grey", linestyle="--", label=f"the threshold, {threshold:.3f}")
    axes.set_xlabel("threshold on the probability of the digit read")
    axes.set_ylim(0, 1.02)
    axes.legend(loc="lower left", fontsize=8)
    axes.set_title("sure readings: coverage and accuracy by threshold")
    path = output / "sure_by_threshold.png"
    figure.savefig(path, bbox_inches="tight")
    return path


def write_pictures(
    drawings: Drawings, pixels: np.ndarray, read: np.ndarray, labels: np.ndarray, output: Path
) -> dict[str, str]:
    """The confusion matrix, and each misread drawing beside the 8x8 image the model saw."""
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    output.mkdir(parents=True)
    # A figure of its own, not pyplot's current one: the caller's plots and backend
    # (a notebook's) stay as they are.
    axes = Figure(figsize=(6.4, 4.8)).add_subplot()
    display = ConfusionMatrixDisplay.from_predictions(
        labels, read, labels=list(range(10)), colorbar=False, ax=axes
    )
    display.ax_.set_title("drawn digits: true down, read across")
    confusion_path = output / "confusion_matrix.png"
    display.figure_.savefig(confusion_path, dpi=100, bbox_inches="tight")
    wrong = np.flatnonzero(read != labels)[:MAX_MISREAD_SHOWN]
    misread_path = output / "misread.png"
    misread_figure(
        [draw(drawings.points[i], drawings.hands[i]) for i in wrong],
        pixels[wrong],
        [f"{labels[i]} -> {read[i]}" for i in wrong],
    ).savefig(misread_path, dpi=100, bbox_inches="tight")
    return {"confusion": str(confusion_path), "misread": str(misread_path)}


def misread_figure(
    canvases: list, pixels: np.ndarray, titles: list[str], columns: int = 6
) -> Figure:
    """Each drawing as drawn and, beside it, as the model saw it (8x8), with a title."""
    from matplotlib.figure import Figure

    rows = max(1, -(-len(canvases) // columns))
    tile = THUMBNAIL
    sheet = np.ones((rows * (tile + 16), columns * (2 * tile + 12)), dtype=np.float32)
    figure = Figure(figsize=(columns * 1.6, rows * 0.95), dpi=100)
    axes = figure.add_axes((0, 0, 1, 1))
    for position, (canvas, seen, title) in enumerate(zip(canvases, pixels, titles, strict=True)):
        row, column = divmod(position, columns)
        top, left = row * (tile + 16) + 14, column * (2 * tile + 12)
        drawing = np.asarray(canvas.resize((tile, tile)), dtype=np.float32) / 255
        small = 1 - np.kron(seen.reshape(8, 8) / 16, np.ones((tile // 8, tile // 8)))
        sheet[top : top + tile, left : left + tile] = drawing
        sheet[top : top + tile, left + tile + 2 : left + 2 * tile + 2] = small
        axes.text(left + tile, top - 2, title, ha="center", va="bottom", fontsize=8)
    axes.imshow(sheet, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes.set_axis_off()
    if not canvases:
        axes.text(0.5, 0.5, "none misread", ha="center", va="center", transform=axes.transAxes)
    return figure


def default_output(ckpt_path: str) -> Path:
    """Beside the run for a checkpoint in a run's ``checkpoints/``, else in this folder."""
    checkpoint = Path(ckpt_path)
    if checkpoint.parent.name == "checkpoints":
        return checkpoint.parent.parent / "drawn" / checkpoint.stem
    return Path("drawn") / checkpoint.stem


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m digits.drawn", exit_on_error=False)
    parser.add_argument("--ckpt_path", type=str, required=True, help="A trained checkpoint.")
    parser.add_argument(
        "--rows",
        type=Rows,
        default="test",
        help="Which of the project's pen digits, by the checkpoint's split (default: test).",
    )
    parser.add_argument(
        "--pen_digits",
        type=str | None,
        default=None,
        help="Read every row of this file instead (UCI pen digits' format: 16 coordinates, digit).",
    )
    parser.add_argument(
        "--output",
        type=str | None,
        default=None,
        help="Folder for the pictures, not there yet (default: RUN/drawn/CKPT, or CKPT-2...).",
    )
    add_threshold_argument(parser)
    parser.add_argument("--json", action="store_true", help="One JSON object on stdout.")
    return parser


def main(args: list[str] | None = None) -> DrawnScore:
    with reading_the_command_line():
        options = parser().parse_args(args)
        check_threshold(options.threshold)
        trained = load_trained(options.ckpt_path)
        drawings = choose_drawings(trained, options.rows, options.pen_digits)
        if options.output is not None:
            check_not_there(Path(options.output))
        # Only the default is numbered past earlier reports; a folder named is the user's.
        output = Path(options.output or unused_path(default_output(options.ckpt_path)))
        check_can_hold_files(output)
    result = score(trained, drawings, output, options.threshold)
    if options.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print("\n".join(result.lines()))
    return result


if __name__ == "__main__":
    main()
