"""Pictures of digits with matplotlib alone, for TensorBoard and for the tools that do not train."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from digits.reading.sure import CALIBRATION_BINS

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def digit_grid(images: np.ndarray, titles: list[str], columns: int = 8) -> Figure:
    """8x8 digits in rows, each with a title, dark ink on white as on paper.

    The digits are laid out in one image with the titles as text on a single ``Axes``:
    one ``Axes`` per digit is several times slower to draw, and the samples grid is
    drawn before the first training step.
    """
    from matplotlib.figure import Figure

    rows = max(1, -(-len(images) // columns))
    tile_width, tile_height, title_room = 10, 12, 3  # pixels: the digit, margins, title
    canvas = np.zeros((rows * tile_height, columns * tile_width), dtype=np.float32)
    figure = Figure(figsize=(columns * 1.1, rows * 1.3), dpi=80)
    axes = figure.add_axes((0, 0, 1, 1))
    for position, (image, title) in enumerate(zip(images, titles, strict=True)):
        row, column = divmod(position, columns)
        top, left = row * tile_height + title_room, column * tile_width + 1
        canvas[top : top + 8, left : left + 8] = np.asarray(image).reshape(8, 8)
        axes.text(left + 3.5, top - 0.7, title, ha="center", va="bottom", fontsize=9)
    axes.imshow(canvas, cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
    axes.set_axis_off()
    if not len(images):
        axes.text(0.5, 0.5, "none", ha="center", va="center", transform=axes.transAxes)
    return figure


def reliability_figure(
    streams: dict[str, tuple[np.ndarray, np.ndarray]], bins: int = CALIBRATION_BINS
) -> Figure:
    """A reliability diagram per stream: how often readings are right against how sure.

    ``streams`` maps a name to (N, 10) probabilities and N labels. Each reading is put in
    one of ``bins`` bins by its top probability (scikit-learn's ``CalibrationDisplay``
    on whether the digit read is right); a calibrated model lies on the diagonal.
    """
    from matplotlib.figure import Figure
    from sklearn.calibration import CalibrationDisplay

    figure = Figure(figsize=(5.5, 5), dpi=80)
    axes = figure.add_subplot()
    for name, (probabilities, labels) in streams.items():
        right = probabilities.argmax(axis=1) == labels
        CalibrationDisplay.from_predictions(
            right, probabilities.max(axis=1), n_bins=bins, pos_label=True, name=name, ax=axes
        )
    axes.set_xlabel("probability of the digit read")
    axes.set_ylabel("share of those readings that are right")
    axes.set_title("reliability (top label)")
    return figure
