"""Anyone's digit as the data set's: 64 pixels in 0..16, bright ink on black.

One set of functions for every way a digit arrives: image files and ``.npy`` arrays for
``python -m digits.predict``, a canvas's PNG and a list of pixels for the server. Each
refuses what it cannot read with a ``ValueError`` whose text is the one line a user sees.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from digits.dataset import MAX_PIXEL, NUM_PIXELS

if TYPE_CHECKING:
    from PIL.Image import Image

MAX_IMAGE_PIXELS = 4096 * 4096  # a drawing is far smaller; a larger one is refused, not decoded

# How optdigits (load_digits) was made: each digit a BITMAP_SIDE x BITMAP_SIDE binary
# bitmap, its "on" pixels counted in BLOCK x BLOCK blocks. docs/drawn.md has the
# statistics these reproduce; tests/test_preprocess.py checks them against the data set.
BITMAP_SIDE = 32
BLOCK = 4
DATASET_INK = 313  # the median number of "on" pixels per bitmap in load_digits
MARGIN = 2  # bitmap pixels left free around the digit while its strokes are thickened
FINE = 2  # strokes are thickened or thinned on a bitmap this many times finer
INK_ROUNDS = 3  # refits until the ink is within INK_TOLERANCE of DATASET_INK
INK_TOLERANCE = 0.03
# Ink spanning less than this share of the image is a dot or a short stroke, not yet a
# digit (on the page's 280-pixel canvas: 56 pixels).
SMALLEST_DIGIT = 0.2


@dataclass(frozen=True)
class Drawing:
    """An image read as a digit: its 64 pixels, and how much of the image its ink spans."""

    pixels: np.ndarray  # (64,) in load_digits' 0..16
    extent: float  # the ink's longer side over the image's shorter side

    @property
    def too_small(self) -> bool:
        """A dot or a short stroke, not yet a digit: never a sure reading."""
        return self.extent < SMALLEST_DIGIT


def read_drawing(image: Image) -> Drawing:
    """The image as a digit (``image_to_digit``) and the size of its ink."""
    ink = ink_coverage(image)
    cropped = crop_to_ink(ink)
    return Drawing(digit_from_ink(cropped), max(cropped.shape) / min(ink.shape))


def image_to_digit(image: Image) -> np.ndarray:
    """An image of any size as one (64,) row in load_digits' 0..16 format.

    Made the way the data set was made, so that a drawing looks like its digits: the
    ink is cropped and scaled to the bitmap's full height, its proportions kept (the
    width varies, as in the data set); its strokes are thickened or thinned evenly
    until the bitmap holds the data set's amount of ink, whatever the pen; the 32x32
    bitmap is then counted in 4x4 blocks. A pen twice as wide, or a digit half as
    large, gives nearly the same 64 numbers.
    """
    return digit_from_ink(crop_to_ink(ink_coverage(image)))


def digit_from_ink(ink: np.ndarray) -> np.ndarray:
    """Ink cropped to the digit (0..1, any size) as the data set's 64 pixels."""
    from scipy.ndimage import distance_transform_edt

    fine_side, inner = BITMAP_SIDE * FINE, (BITMAP_SIDE - 2 * MARGIN) * FINE
    coverage = fit_to_height(ink, inner, fine_side)
    inked = coverage > 0.5
    # Signed distance to the strokes' edge, negative inside: the pixels nearest the
    # strokes' middle come first, so taking the first N thickens or thins every stroke
    # by the same amount. The ink's density breaks ties between equal distances.
    distance = distance_transform_edt(~inked) - distance_transform_edt(inked) - 0.01 * coverage
    order = np.argsort(distance.ravel(), kind="stable")
    wanted = round(DATASET_INK * (inner / BITMAP_SIDE) ** 2)
    for _ in range(INK_ROUNDS):
        fine = np.zeros(fine_side * fine_side, dtype=np.float32)
        fine[order[:wanted]] = 1.0
        bitmap = fit_to_height(crop_to_ink(fine.reshape(fine_side, fine_side)), BITMAP_SIDE)
        bitmap = (bitmap > 0.5).astype(np.float32)
        ink_on = int(bitmap.sum())
        if abs(ink_on - DATASET_INK) <= INK_TOLERANCE * DATASET_INK:
            break
        wanted = max(1, round(wanted * DATASET_INK / max(ink_on, 1)))
    blocks = BITMAP_SIDE // BLOCK
    return bitmap.reshape(blocks, BLOCK, blocks, BLOCK).sum(axis=(1, 3)).reshape(NUM_PIXELS)


def ink_coverage(image: Image) -> np.ndarray:
    """How much ink each pixel holds, 0..1, bright ink on black as in the data set.

    Transparent parts count as white paper; a light background is inverted.
    """
    from PIL import Image as PILImage

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        paper = PILImage.new("RGBA", image.size, "white")
        image = PILImage.alpha_composite(paper, image.convert("RGBA"))
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    if np.median(gray[::4, ::4]) > 127:  # every 16th pixel tells the paper from the ink
        gray = 255.0 - gray
    if gray.max() <= 0:
        raise ValueError("no ink found: the image is blank")
    return gray / gray.max()


def crop_to_ink(ink: np.ndarray, level: float = 0.25) -> np.ndarray:
    """The smallest rectangle holding every pixel with more than ``level`` of ink."""
    inked = ink > level
    rows, columns = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    if len(rows) == 0:
        raise ValueError("no ink found: the image is blank")
    return ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]


def fit_to_height(ink: np.ndarray, height: int, side: int = BITMAP_SIDE) -> np.ndarray:
    """``ink`` scaled to ``height`` rows, its proportions kept, centred in a square.

    A digit wider than tall is scaled to the square's width instead.
    """
    from PIL import Image as PILImage

    rows, columns = ink.shape
    new_rows, new_columns = height, max(1, round(columns * height / rows))
    if new_columns > side:
        new_rows, new_columns = max(1, round(rows * side / columns)), side
    scaled = PILImage.fromarray(ink.astype(np.float32), mode="F").resize(
        (new_columns, new_rows), PILImage.Resampling.BOX
    )
    bitmap = np.zeros((side, side), dtype=np.float32)
    top, left = (side - new_rows) // 2, (side - new_columns) // 2
    bitmap[top : top + new_rows, left : left + new_columns] = np.asarray(scaled)
    return bitmap


def open_image(data: bytes) -> Image:
    """Image bytes (PNG, JPEG...) as a decoded image, turned as it is shown, or why not."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    if not data:
        raise ValueError("the image is empty")
    try:
        # The size is read from the header, before any pixel is decoded.
        image = PILImage.open(io.BytesIO(data))
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise ImageTooLarge(f"the image is {image.width}x{image.height}; at most 4096x4096")
        image.load()
    except ImageTooLarge:
        raise
    except PILImage.DecompressionBombError:
        # Pillow refuses on opening a header claiming over twice its own pixel limit.
        raise ImageTooLarge("the image is larger than 4096x4096") from None
    except DECODER_ERRORS:
        raise ValueError("not an image: expected PNG or JPEG data") from None
    # A phone stores a photo as its sensor saw it, with an EXIF tag saying how to turn it;
    # a tag Pillow cannot read leaves the image as stored, which is still an image.
    try:
        return ImageOps.exif_transpose(image)
    except DECODER_ERRORS:
        return image


# What Pillow raises on bytes it cannot decode: its own errors (OSError, SyntaxError,
# ValueError) and, on some damaged files, what its parsers meet on the way (a TIFF tag
# of the wrong type, a length beyond the file). A bug of ours (a NameError, an
# AttributeError) is none of these, and keeps its traceback.
DECODER_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    OverflowError,
    IndexError,
    KeyError,
    EOFError,
    ZeroDivisionError,
    struct.error,
)


class ImageTooLarge(ValueError):
    """An image refused from its header, before a pixel of it was decoded."""


def data_url_to_image(text: str) -> Image:
    """A ``data:image/png;base64,...`` URL (what a canvas's toDataURL gives) or bare base64."""
    _, comma, payload = text.partition(",") if text.startswith("data:") else ("", "", text)
    if text.startswith("data:") and (not comma or ";base64" not in text[: text.index(",")]):
        raise ValueError("the image must be a base64 data URL: data:image/png;base64,...")
    try:
        data = base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the image is not valid base64") from None
    return open_image(data)


def checked_digits(values: Any) -> np.ndarray:
    """Digits already in load_digits' format, as (N, 64) float32: (64,), (8, 8) or (N, 64)."""
    try:
        array = np.asarray(values)
    except ValueError:  # ragged nested lists
        raise ValueError("pixels must be 64 numbers, or 8 rows of 8") from None
    if array.shape in ((NUM_PIXELS,), (8, 8)):
        array = array.reshape(1, NUM_PIXELS)
    elif array.ndim != 2 or array.shape[1] != NUM_PIXELS:
        raise ValueError(f"shape {array.shape}; expected (64,), (8, 8) or (N, 64)")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise ValueError("pixels must be numbers (no null, text or true/false)")
    if np.iscomplexobj(array):
        raise ValueError("pixels must be real numbers, not complex")
    if len(array) == 0:
        raise ValueError(f"no digits in it: shape {array.shape}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("pixels must be finite numbers (no NaN or infinity)")
    if array.min() < 0 or array.max() > MAX_PIXEL:
        raise ValueError("values outside 0..16, the format of load_digits")
    return array
