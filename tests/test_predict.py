"""digits.predict on images and arrays the tests draw themselves, checked against the labels.

The checkpoint is standard-scaled (with a 64-unit network and split seed 2): with the
default raw scaling, a predict that left the checkpoint's scaling out would still pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from digits import DigitsDataModule
from digits.people.preprocess import image_to_digit, open_image
from digits.reading.predict import main
from tests.conftest import (
    lightning_probabilities,
    split_for_testing,
    tiff_with_text_strip_offsets,
)

SHOWN = 40  # test images drawn as files


def draw(digit_pixels: np.ndarray, path: Path, size: int, light_background: bool) -> Path:
    """A load_digits image blown up to size x size, on white or on black."""
    ink = (digit_pixels.reshape(8, 8) / 16 * 255).astype(np.uint8)
    image = Image.fromarray(255 - ink if light_background else ink).resize((size, size))
    image.save(path)
    return path


@pytest.fixture(scope="module")
def test_digits(trained_standard: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = split_for_testing(trained_standard)
    return images[:SHOWN], labels[:SHOWN]


def test_an_image_becomes_the_data_sets_8x8_format(tmp_path: Path, test_digits):
    images, _ = test_digits
    original = images[0]
    for light in (True, False):
        path = draw(original, tmp_path / f"zero{light}.png", 160, light)
        row = image_to_digit(open_image(path.read_bytes()))
        assert row.shape == (64,) and row.min() >= 0 and row.max() == pytest.approx(16)
        assert np.corrcoef(row, original)[0, 1] > 0.8


def test_arrays_are_read_as_the_trained_model_reads_its_test_split(
    trained_standard: Path, tmp_path: Path, test_digits, capsys
):
    images, labels = test_digits
    np.save(tmp_path / "rows.npy", images)
    np.save(tmp_path / "square.npy", images[0].reshape(8, 8))
    np.save(tmp_path / "flat.npy", images[1])
    names = [str(tmp_path / name) for name in ("rows.npy", "square.npy", "flat.npy")]
    predictions = main(["--ckpt_path", str(trained_standard), *names])

    # What the Lightning model says on the same images, scaled as in training.
    datamodule = DigitsDataModule.load_from_checkpoint(trained_standard, weights_only=True)
    datamodule.setup("test")
    probabilities = lightning_probabilities(trained_standard, datamodule.test_set.features[:SHOWN])
    rows = predictions[:SHOWN]
    assert [p.index for p in rows] == list(range(SHOWN))
    assert [p.digit for p in rows] == probabilities.argmax(dim=1).tolist()
    assert [p.probability for p in rows] == pytest.approx(probabilities.max(dim=1).values.tolist())
    assert np.mean([p.digit for p in rows] == labels) >= 0.85
    square, flat = predictions[SHOWN:]
    assert (square.index, square.digit) == (None, rows[0].digit)
    assert (flat.index, flat.digit) == (None, rows[1].digit)
    lines = capsys.readouterr().out.splitlines()
    first = rows[0]
    said = f"{names[0]}[0]: {first.digit} (probability {first.probability:.3f}"
    if first.sure:
        assert lines[0] == said + ")"
    else:
        assert lines[0] == said + f"; not sure: {first.digit} or {first.likeliest[1]}?)"


def test_drawn_images_of_any_size_are_read_as_their_labels(
    trained_standard: Path, tmp_path: Path, test_digits
):
    images, labels = test_digits
    files = [
        str(draw(image, tmp_path / f"d{n}.png", 64 + 16 * (n % 5), light_background=n % 2 == 0))
        for n, image in enumerate(images)
    ]
    predictions = main(["--ckpt_path", str(trained_standard), *files])
    read = np.array([p.digit for p in predictions])
    # Cropping to the ink and shrinking again moves a few pixels: most, not all, survive.
    assert (read == labels).mean() >= 0.8


def test_bad_files_get_an_error_and_the_others_are_still_predicted(
    trained: Path, tmp_path: Path, capsys
):
    good = tmp_path / "good.npy"
    np.save(good, np.zeros(64))
    (tmp_path / "junk.png").write_text("not an image")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 3)))
    np.save(tmp_path / "range.npy", np.full(64, 99.0))
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    (tmp_path / "broken.png").write_bytes(tiff_with_text_strip_offsets())
    (tmp_path / "empty.npy").write_bytes(b"")  # on which NumPy raises EOFError
    np.save(tmp_path / "none.npy", np.zeros((0, 64)))
    np.save(tmp_path / "complex.npy", np.zeros(64, dtype=complex))
    np.savetxt(tmp_path / "text.npy", np.zeros((2, 64)))  # text under a .npy name
    np.save(tmp_path / "objects.npy", np.array([[0] * 64], dtype=object), allow_pickle=True)
    names = ["good.npy", "junk.png", "wrong.npy", "range.npy", "blank.png", "missing.png"]
    names.insert(1, "broken.png")  # a TIFF on which Pillow fails with a TypeError
    names += ["empty.npy", "none.npy", "complex.npy", "text.npy", "objects.npy"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained), "--json", *[str(tmp_path / n) for n in names]])
    assert exit_info.value.code == 1
    results = json.loads(capsys.readouterr().out)
    assert [r["error"] is None for r in results] == [True] + [False] * 11
    assert results[7]["error"] == "an empty file, not a .npy array"
    assert results[8]["error"] == "no digits in it: shape (0, 64)"
    assert results[9]["error"] == "pixels must be real numbers, not complex"
    assert results[10]["error"] == "not a .npy array: it does not begin as NumPy's .npy files do"
    assert results[11]["error"] == "a .npy file of Python objects or a damaged one, not of numbers"
    assert results[0]["digit"] in range(10)
    assert results[1]["error"] == "not an image: expected PNG or JPEG data"
    assert results[2]["error"] == "not an image: expected PNG or JPEG data"
    assert "shape (3, 3)" in results[3]["error"] and "0..16" in results[4]["error"]
    assert "blank" in results[5]["error"] and "no such file" in results[6]["error"]


def test_a_bad_checkpoint_is_exit_2(tmp_path: Path, capsys):
    np.save(tmp_path / "x.npy", np.zeros(64))
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(tmp_path / "none.ckpt"), str(tmp_path / "x.npy")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: checkpoint not found: {tmp_path}/none.ckpt"


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_a_folder_or_an_export_given_as_the_checkpoint_is_named_as_such(tmp_path: Path, capsys):
    """An export read as a checkpoint printed torch's warning and a line cut mid-word."""
    np.save(tmp_path / "x.npy", np.zeros(64))
    exported = tmp_path / "best.pt"
    torch.jit.save(torch.jit.trace(torch.nn.Linear(64, 10), torch.zeros(1, 64)), exported)
    for given, line in (
        (tmp_path, f"error: {tmp_path} is a folder; give a checkpoint file in it (.ckpt)"),
        (
            exported,
            f"error: {exported} is a TorchScript export, not a training checkpoint; give the "
            ".ckpt it was exported from",
        ),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["--ckpt_path", str(given), str(tmp_path / "x.npy")])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.strip().splitlines() == [line]


def test_a_reading_below_the_threshold_says_not_sure_and_names_the_two_likeliest(
    trained_standard: Path, tmp_path: Path, test_digits, capsys
):
    images, _ = test_digits
    np.save(tmp_path / "rows.npy", images[:5])
    rows = str(tmp_path / "rows.npy")
    everything = main(["--ckpt_path", str(trained_standard), "--threshold", "0", rows])
    assert all(p.sure for p in everything)
    capsys.readouterr()
    nothing = main(["--ckpt_path", str(trained_standard), "--threshold", "1", "--json", rows])
    printed = json.loads(capsys.readouterr().out)
    datamodule = DigitsDataModule.load_from_checkpoint(trained_standard, weights_only=True)
    datamodule.setup("test")
    probabilities = lightning_probabilities(trained_standard, datamodule.test_set.features[:5])
    two = probabilities.topk(2, dim=1).indices.tolist()
    for prediction, shown, likeliest in zip(nothing, printed, two, strict=True):
        sure = prediction.probability >= 1.0
        assert prediction.sure == shown["sure"] == sure
        assert list(prediction.likeliest) == shown["likeliest"] == likeliest
        assert prediction.digit == likeliest[0]
    not_sure = [p for p in nothing if not p.sure]
    assert not_sure, "a threshold of 1 leaves some reading unsure"
    line = not_sure[0].line()
    assert line.endswith(f"; not sure: {not_sure[0].likeliest[0]} or {not_sure[0].likeliest[1]}?)")


def test_a_dot_is_never_a_sure_digit(trained_standard: Path, tmp_path: Path):
    canvas = Image.new("L", (280, 280), "white")
    canvas.paste(0, (130, 130, 150, 150))  # a 20-pixel dot on the page's canvas
    canvas.save(tmp_path / "dot.png")
    (dot,) = main(
        ["--ckpt_path", str(trained_standard), "--threshold", "0", str(tmp_path / "dot.png")]
    )
    assert dot.sure is False


def test_a_threshold_outside_0_to_1_is_one_line_and_exit_2(trained_standard: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained_standard), "--threshold", "1.5", "any.npy"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: --threshold must be a probability, 0 to 1, got 1.5\n"
