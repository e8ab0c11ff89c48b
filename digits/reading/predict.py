"""Read digits from your own files with a trained checkpoint.

Images (PNG, JPEG, any size) are made to look like ``load_digits`` by
``digits.people.preprocess.image_to_digit``, the same function the server uses. ``.npy`` files
already in that format may hold one digit, shape (64,) or (8, 8), or several, shape
(N, 64). The checkpoint's own input scaling is applied after that.

Each reading is *sure* when its calibrated probability reaches the checkpoint's
threshold (``--threshold`` sets another) and, for a checkpoint that keeps the test, the
image is like its training digits (``digits.reading.familiar``); otherwise it says so,
with the two likeliest digits: ``7 (probability 0.612; not sure: 7 or 1?)``. A drawing
too small to be a digit yet is never sure. A file that cannot be read gets an error
line; the others are still predicted, and the exit code is 1 if any failed.

Usage::

    python -m digits.predict --ckpt_path RUN/checkpoints/last.ckpt three.png seven.jpg row.npy
    python -m digits.predict --ckpt_path RUN/checkpoints/last.ckpt --json three.png
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from jsonargparse import ArgumentParser

from digits.errors import reading_the_command_line
from digits.people.preprocess import checked_digits, open_image, read_drawing
from digits.reading.trained import (
    Reading,
    TrainedNetwork,
    add_threshold_argument,
    check_threshold,
    load_trained,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
SOME_FAILED = 1


def read_digits(path: Path) -> tuple[np.ndarray, bool]:
    """A file's digits as (N, 64) rows in load_digits' 0..16 format, and if it is too small.

    Only an image can be too small to be a digit (a dot, a short stroke).
    """
    if not path.is_file():
        raise ValueError("no such file")
    if path.suffix.lower() == ".npy":
        return checked_digits(load_npy(path)), False
    if path.suffix.lower() in IMAGE_SUFFIXES:
        drawing = read_drawing(open_image(path.read_bytes()))
        return drawing.pixels[None, :], drawing.too_small
    raise ValueError(f"unknown file type {path.suffix!r}; expected an image or .npy")


def load_npy(path: Path) -> np.ndarray:
    """The array a ``.npy`` file holds, refused in words when it holds none.

    Refused before NumPy reads it, since NumPy takes any other file for pickled data and
    its error would tell the user to allow code to run (``allow_pickle``), never safe here.
    """
    with path.open("rb") as file:
        start = file.read(len(np.lib.format.MAGIC_PREFIX))
    if not start:
        raise ValueError("an empty file, not a .npy array")
    if start != np.lib.format.MAGIC_PREFIX:
        raise ValueError("not a .npy array: it does not begin as NumPy's .npy files do")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError:  # a header NumPy cannot read, or an array of Python objects
        raise ValueError("a .npy file of Python objects or a damaged one, not of numbers") from None


@dataclass(frozen=True)
class Prediction:
    file: str
    index: int | None = None  # the row, for a .npy file of several digits
    digit: int | None = None
    probability: float | None = None
    sure: bool | None = None
    likeliest: tuple[int, int] | None = None  # the two likeliest digits
    unfamiliar: bool | None = None  # unlike every digit the checkpoint trained on
    error: str | None = None

    def line(self) -> str:
        name = self.file if self.index is None else f"{self.file}[{self.index}]"
        if self.error is not None:
            return f"{name}: error: {self.error}"
        reading = Reading(
            self.digit, self.probability, self.sure, self.likeliest, bool(self.unfamiliar)
        )
        return f"{name}: {reading.words()}"


def read_files(
    trained: TrainedNetwork, files: list[str], threshold: float | None = None
) -> list[Prediction]:
    """Each file's digits; a file that cannot be read gets its error and the rest go on."""
    predictions = []
    for name in files:
        try:
            rows, too_small = read_digits(Path(name))
        except (OSError, ValueError) as error:  # the user's file: say why and go on
            predictions.append(Prediction(name, error=str(error).splitlines()[0]))
            continue
        _, readings = trained.readings(rows, threshold, too_small)
        several = len(rows) > 1
        for index, reading in enumerate(readings):
            predictions.append(
                Prediction(
                    name,
                    index if several else None,
                    reading.digit,
                    reading.probability,
                    reading.sure,
                    reading.likeliest,
                    reading.unfamiliar,
                )
            )
    return predictions


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m digits.predict", exit_on_error=False)
    parser.add_argument("--ckpt_path", type=str, required=True, help="A trained checkpoint.")
    parser.add_argument("--json", action="store_true", help="One JSON list on stdout.")
    add_threshold_argument(parser)
    parser.add_argument("files", type=str, nargs="+", help="Images (PNG, JPEG...) or .npy files.")
    return parser


def main(args: list[str] | None = None) -> list[Prediction]:
    with reading_the_command_line():  # reading the command line and the checkpoint
        config = parser().parse_args(args)
        check_threshold(config.threshold)
        trained = load_trained(config.ckpt_path)
    predictions = read_files(trained, config.files, config.threshold)
    if config.json:
        print(json.dumps([asdict(prediction) for prediction in predictions], indent=2))
    else:
        for prediction in predictions:
            print(prediction.line(), file=sys.stderr if prediction.error else sys.stdout)
    if any(prediction.error for prediction in predictions):
        raise SystemExit(SOME_FAILED)
    return predictions


if __name__ == "__main__":
    main()
