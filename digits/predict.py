"""Read digits from your own files with a trained checkpoint.

Images (PNG, JPEG, any size) are made to look like ``load_digits``: grayscale, inverted
when the background is light (the data set has bright ink on black), cropped to the ink,
padded square, shrunk to 8x8 by averaging and rescaled to 0..16. ``.npy`` files already
in that format may hold one digit, shape (64,) or (8, 8), or several, shape (N, 64).
The checkpoint's own input scaling is applied after that.

A file that cannot be read gets an error line; the others are still predicted, and the
exit code is 1 if any failed.

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

from digits.errors import exit_on_user_error
from digits.inference import load_trained

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
SOME_FAILED = 1


def image_to_digit(path: Path) -> np.ndarray:
    """An image file as one (64,) row in load_digits' 0..16 format."""
    from PIL import Image

    with Image.open(path) as image:
        gray = np.asarray(image.convert("L"), dtype=np.float32)
    # Ink is bright in load_digits: invert a dark-on-light drawing.
    if np.median(gray) > 127:
        gray = 255.0 - gray
    ink = np.argwhere(gray > 0.25 * gray.max()) if gray.max() > 0 else np.empty((0, 2))
    if len(ink) == 0:
        raise ValueError("no ink found: the image is blank")
    (top, left), (bottom, right) = ink.min(axis=0), ink.max(axis=0) + 1
    gray = gray[top:bottom, left:right]
    # Square and centred, the ink touching the longer sides, as in the data set.
    side = max(gray.shape)
    square = np.zeros((side, side), dtype=np.float32)
    y, x = (side - gray.shape[0]) // 2, (side - gray.shape[1]) // 2
    square[y : y + gray.shape[0], x : x + gray.shape[1]] = gray
    small = Image.fromarray(square).resize((8, 8), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float32)
    return (pixels * (16.0 / pixels.max())).reshape(64)


def array_to_digits(path: Path) -> np.ndarray:
    """A .npy file as (N, 64) rows, checked to be in the 0..16 format."""
    array = np.load(path, allow_pickle=False)
    if array.shape in ((64,), (8, 8)):
        array = array.reshape(1, 64)
    elif array.ndim != 2 or array.shape[1] != 64:
        raise ValueError(f"shape {array.shape}; expected (64,), (8, 8) or (N, 64)")
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"dtype {array.dtype} is not numeric")
    array = array.astype(np.float32)
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 16:
        raise ValueError("values outside 0..16, the format of load_digits")
    return array


def read_digits(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ValueError("no such file")
    if path.suffix.lower() == ".npy":
        return array_to_digits(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return image_to_digit(path)[None, :]
    raise ValueError(f"unknown file type {path.suffix!r}; expected an image or .npy")


@dataclass(frozen=True)
class Prediction:
    file: str
    index: int | None = None  # the row, for a .npy file of several digits
    digit: int | None = None
    probability: float | None = None
    error: str | None = None

    def line(self) -> str:
        name = self.file if self.index is None else f"{self.file}[{self.index}]"
        if self.error is not None:
            return f"{name}: error: {self.error}"
        return f"{name}: {self.digit} (probability {self.probability:.3f})"


def predict_files(ckpt_path: str, files: list[str]) -> list[Prediction]:
    trained = load_trained(ckpt_path)
    predictions = []
    for name in files:
        try:
            rows = read_digits(Path(name))
        except Exception as error:  # any unreadable file: say why and go on
            predictions.append(Prediction(name, error=str(error).splitlines()[0]))
            continue
        probabilities = trained.probabilities(rows)
        several = len(rows) > 1
        for index, row in enumerate(probabilities):
            digit = int(row.argmax())
            predictions.append(
                Prediction(name, index if several else None, digit, float(row[digit]))
            )
    return predictions


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m digits.predict", exit_on_error=False)
    parser.add_argument("--ckpt_path", type=str, required=True, help="A trained checkpoint.")
    parser.add_argument("--json", action="store_true", help="One JSON list on stdout.")
    parser.add_argument("files", type=str, nargs="+", help="Images (PNG, JPEG...) or .npy files.")
    return parser


def main(args: list[str] | None = None) -> list[Prediction]:
    with exit_on_user_error():
        config = parser().parse_args(args)
        predictions = predict_files(config.ckpt_path, config.files)
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
