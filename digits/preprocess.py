"""Anyone's digit as the data set's: 64 pixels in 0..16, bright ink on black.

One set of functions for every way a digit arrives: image files and ``.npy`` arrays for
``python -m digits.predict``, a canvas's PNG and a list of pixels for the server. Each
refuses what it cannot read with a ``ValueError`` whose text is the one line a user sees.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from digits.dataset import MAX_PIXEL, NUM_PIXELS

if TYPE_CHECKING:
    from PIL.Image import Image

MAX_IMAGE_PIXELS = 4096 * 4096  # a drawing is far smaller; a larger one is refused, not decoded


def image_to_digit(image: Image) -> np.ndarray:
    """An image of any size as one (64,) row in load_digits' 0..16 format.

    Made to look like the data set: transparent parts count as white paper, grayscale,
    inverted when the background is light (the data set has bright ink on black),
    cropped to the ink, padded square and centred, shrunk to 8x8 by averaging, and
    rescaled so that the darkest ink is 16.
    """
    from PIL import Image as PILImage

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        paper = PILImage.new("RGBA", image.size, "white")
        image = PILImage.alpha_composite(paper, image.convert("RGBA"))
    gray = np.asarray(image.convert("L"), dtype=np.float32)
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
    small = PILImage.fromarray(square).resize((8, 8), PILImage.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float32)
    return (pixels * (MAX_PIXEL / pixels.max())).reshape(NUM_PIXELS)


def open_image(data: bytes) -> Image:
    """Image bytes (PNG, JPEG...) as a decoded image, or why not."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    if not data:
        raise ValueError("the image is empty")
    try:
        image = PILImage.open(io.BytesIO(data))
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise ValueError(f"the image is {image.width}x{image.height}; at most 4096x4096")
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ValueError("not an image: expected PNG or JPEG data") from None
    return image


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
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("pixels must be finite numbers (no NaN or infinity)")
    if array.min() < 0 or array.max() > MAX_PIXEL:
        raise ValueError("values outside 0..16, the format of load_digits")
    return array
