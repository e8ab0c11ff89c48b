"""The pictures in TensorBoard's Images tab, read back from the event files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from digits.training.pictures import confusion_figure, digit_grid
from tests.conftest import read_events


def images(run: Path) -> dict[str, list[np.ndarray]]:
    events = read_events(run)
    return {
        tag: [
            np.asarray(Image.open(io.BytesIO(e.encoded_image_string))) for e in events.Images(tag)
        ]
        for tag in events.Tags()["images"]
    }


@pytest.fixture(scope="module")
def pictures(trained: Path) -> dict[str, list[np.ndarray]]:
    return images(trained.parent.parent)


def test_every_picture_is_in_the_images_tab_once(pictures):
    assert {tag: len(shown) for tag, shown in pictures.items()} == {
        "train/samples": 1,
        "val/confusion_matrix": 1,
        "test/confusion_matrix": 1,
        "test/misclassified": 1,
        "test/reliability": 1,
    }


def test_pictures_are_real_images_with_content(pictures):
    for tag, (picture,) in pictures.items():
        assert picture.ndim == 3 and picture.shape[0] > 200 and picture.shape[1] > 200, tag
        assert picture.std() > 10, f"{tag} is blank"


def test_confusion_figure_puts_each_count_in_its_true_row_and_predicted_column():
    predictions = torch.tensor([0, 1, 1, 2, 9, 9])
    targets = torch.tensor([0, 1, 2, 2, 9, 3])
    figure = confusion_figure(predictions, targets, "test", 10)
    (axes,) = figure.axes
    assert (axes.get_ylabel(), axes.get_xlabel()) == ("True class", "Predicted class")
    drawn = np.zeros((10, 10), dtype=int)
    for text in axes.texts:
        column, row = text.get_position()
        drawn[round(row), round(column)] = int(text.get_text())
    expected = np.zeros((10, 10), dtype=int)
    for true, predicted in zip(targets.tolist(), predictions.tolist(), strict=True):
        expected[true, predicted] += 1
    assert len(axes.texts) == 100
    assert (drawn == expected).all()  # a 2 read as 1 is row 2, column 1; not transposed


def test_digit_grid_titles_say_true_and_predicted():
    images = np.zeros((3, 64))
    images[1, 0] = 16  # the second digit's top-left pixel in full ink
    figure = digit_grid(images, ["1 -> 7", "4 -> 9", "3 -> 8"])
    (axes,) = figure.axes
    assert [text.get_text() for text in axes.texts] == ["1 -> 7", "4 -> 9", "3 -> 8"]
    canvas = axes.get_images()[0].get_array()
    assert canvas.sum() == 16
    (row, column) = np.argwhere(canvas == 16)[0]
    title_x, title_y = axes.texts[1].get_position()
    assert title_x - 3.5 == column and title_y < row  # the title centred above its digit
