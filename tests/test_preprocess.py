"""A drawing, preprocessed, looks like the data set: the statistics of load_digits, compared.

load_digits' digits fill the bitmap's height, keep their proportions, and hold about the
same amount of ink whatever the writer's pen (NIST's preprocessing normalised the
strokes). These tests measure those statistics on load_digits and on preprocessed
drawings: pen digits drawn as the page draws them, and load_digits' own digits redrawn
with a thinner and a thicker pen.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digits.dataset import load
from digits.people.pen_digits import Hand, draw, drawn_pixels, hands, read_pen_digits
from digits.people.preprocess import DATASET_INK, image_to_digit, open_image

DRAWN = 300  # pen digits drawn for the statistics


def ink(images: np.ndarray) -> np.ndarray:
    """Blocks' counts summed: the "on" pixels of each 32x32 bitmap."""
    return images.reshape(len(images), -1).sum(axis=1)


def rows_with_ink(images: np.ndarray) -> np.ndarray:
    return (images.reshape(-1, 8, 8).sum(axis=2) > 0).sum(axis=1)


def columns_with_ink(images: np.ndarray) -> np.ndarray:
    return (images.reshape(-1, 8, 8).sum(axis=1) > 0).sum(axis=1)


def column_centre(images: np.ndarray) -> np.ndarray:
    """Where the ink sits across, 0 (left) to 7 (right)."""
    per_column = images.reshape(-1, 8, 8).sum(axis=1)
    return (per_column * np.arange(8)).sum(axis=1) / per_column.sum(axis=1)


@pytest.fixture(scope="module")
def pen_drawn() -> tuple[np.ndarray, np.ndarray]:
    points, labels = read_pen_digits()
    return drawn_pixels(points[:DRAWN], hands(DRAWN)), labels[:DRAWN]


def redrawn(image: np.ndarray, level: float, size: int = 200) -> Image.Image:
    """A load_digits digit drawn large on white paper; a lower level draws a thicker pen."""
    enlarged = Image.fromarray(image.reshape(8, 8) / 16, mode="F").resize(
        (size, size), Image.Resampling.BILINEAR
    )
    paper = np.full((280, 280), 255, dtype=np.uint8)
    paper[30 : 30 + size, 50 : 50 + size][np.asarray(enlarged) > level] = 0
    return Image.fromarray(paper)


def test_the_target_ink_is_the_data_sets_own():
    assert pytest.approx(np.median(ink(load()[0])), abs=1) == DATASET_INK


def test_drawings_become_whole_counts_of_4x4_blocks(pen_drawn):
    pixels, _ = pen_drawn
    assert pixels.shape == (DRAWN, 64)
    assert pixels.min() == 0 and pixels.max() == 16
    np.testing.assert_array_equal(pixels, pixels.round())


def test_drawings_fill_the_height_as_every_data_set_digit_does(pen_drawn):
    images, _ = load()
    assert (rows_with_ink(images) == 8).all()  # the data set's own statistic
    assert (rows_with_ink(pen_drawn[0]) == 8).mean() >= 0.99


def test_drawings_hold_the_data_sets_amount_of_ink_whatever_the_pen(pen_drawn):
    dataset_ink = ink(load()[0])
    drawn_ink = ink(pen_drawn[0])
    assert drawn_ink.mean() == pytest.approx(dataset_ink.mean(), rel=0.05)
    # Tighter than the data set's own spread: the pen does not show.
    assert drawn_ink.std() <= dataset_ink.std()
    points, _ = read_pen_digits()
    thin, thick = (draw(points[0], Hand(height=h, pen=p)) for h, p in ((240, 14), (110, 40)))
    assert abs(ink(image_to_digit(thin)[None]) - ink(image_to_digit(thick)[None]))[0] <= 20


def test_a_digit_redrawn_with_another_pen_keeps_its_shape():
    images = load()[0]
    for level in (0.25, 0.75):  # a thick pen, a thin pen
        again = np.stack([image_to_digit(redrawn(image, level)) for image in images[:200]])
        assert np.abs(again - images[:200]).mean() <= 2.0
        assert columns_with_ink(again).mean() == pytest.approx(
            columns_with_ink(images[:200]).mean(), abs=0.8
        )
        assert np.abs(ink(again) - ink(images[:200])).mean() <= 0.15 * DATASET_INK


def test_a_one_is_a_thick_upright_bar_in_the_middle_as_in_the_data_set():
    images, labels = load()
    ones = images[labels == 1]
    canvas = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(canvas).line([(200, 30), (196, 250)], fill=0, width=28)  # off to the right
    drawn_one = image_to_digit(canvas)[None]
    # The data set's ones are two to six blocks wide, centred: so is a plain stroke.
    assert 2 <= columns_with_ink(drawn_one)[0] <= np.percentile(columns_with_ink(ones), 50)
    assert column_centre(drawn_one)[0] == pytest.approx(column_centre(ones).mean(), abs=0.6)
    assert ink(drawn_one)[0] == pytest.approx(np.median(ink(ones)), rel=0.1)


@pytest.mark.parametrize(("orientation", "stored_turned"), [(6, 90), (8, 270), (3, 180)])
def test_a_photo_stored_turned_is_read_as_it_is_shown(orientation: int, stored_turned: int):
    """A phone stores a photo as the sensor saw it, with an EXIF tag saying how to turn it."""
    images, labels = load()
    seven = images[labels == 7][0]
    upright = redrawn(seven, 0.3)
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    stored = io.BytesIO()
    upright.rotate(stored_turned, expand=True).save(stored, "PNG", exif=exif)
    as_shown = image_to_digit(open_image(stored.getvalue()))
    np.testing.assert_array_equal(as_shown, image_to_digit(upright))
