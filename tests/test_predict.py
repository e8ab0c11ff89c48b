"""digits.predict on images and arrays the tests draw themselves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from digits.predict import image_to_digit, main


def draw(digit_pixels: np.ndarray, path: Path, size: int, light_background: bool) -> Path:
    """A load_digits image blown up to size x size, on white or on black."""
    ink = (digit_pixels.reshape(8, 8) / 16 * 255).astype(np.uint8)
    image = Image.fromarray(255 - ink if light_background else ink).resize((size, size))
    image.save(path)
    return path


@pytest.fixture(scope="module")
def digits_data():
    return load_digits()


def test_an_image_becomes_the_data_sets_8x8_format(tmp_path: Path, digits_data):
    original = digits_data.data[0]  # a "0" whose ink spans the 8x8 grid
    for light in (True, False):
        row = image_to_digit(draw(original, tmp_path / f"zero{light}.png", 160, light))
        assert row.shape == (64,) and row.min() >= 0 and row.max() == pytest.approx(16)
        assert np.corrcoef(row, original)[0, 1] > 0.8


def test_predicts_drawn_images_and_arrays(trained: Path, tmp_path: Path, digits_data, capsys):
    test_rows = [3, 10, 15]  # a few digits the network should know
    files = [
        str(draw(digits_data.data[i], tmp_path / f"d{i}.png", 96 + 30 * n, n % 2 == 0))
        for n, i in enumerate(test_rows)
    ]
    np.save(tmp_path / "rows.npy", digits_data.data[test_rows])
    np.save(tmp_path / "square.npy", digits_data.data[test_rows[0]].reshape(8, 8))
    files += [str(tmp_path / "rows.npy"), str(tmp_path / "square.npy")]
    predictions = main(["--ckpt_path", str(trained), *files])
    expected = [int(digits_data.target[i]) for i in test_rows]
    from_arrays = [p.digit for p in predictions if p.file.endswith("rows.npy")]
    assert from_arrays == expected
    assert [p.index for p in predictions if p.file.endswith("rows.npy")] == [0, 1, 2]
    assert all(0 < p.probability <= 1 for p in predictions)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 + 3 + 1 and lines[3].endswith(
        f"rows.npy[0]: {expected[0]}" + lines[3][lines[3].index(" (") :]
    )


def test_bad_files_get_an_error_and_the_others_are_still_predicted(
    trained: Path, tmp_path: Path, capsys
):
    good = tmp_path / "good.npy"
    np.save(good, np.zeros(64))
    (tmp_path / "junk.png").write_text("not an image")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 3)))
    np.save(tmp_path / "range.npy", np.full(64, 99.0))
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    names = ["good.npy", "junk.png", "wrong.npy", "range.npy", "blank.png", "missing.png"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained), "--json", *[str(tmp_path / n) for n in names]])
    assert exit_info.value.code == 1
    results = json.loads(capsys.readouterr().out)
    assert [r["error"] is None for r in results] == [True, False, False, False, False, False]
    assert results[0]["digit"] in range(10)
    assert "shape (3, 3)" in results[2]["error"] and "0..16" in results[3]["error"]
    assert "blank" in results[4]["error"] and "no such file" in results[5]["error"]


def test_a_bad_checkpoint_is_exit_2(tmp_path: Path, capsys):
    np.save(tmp_path / "x.npy", np.zeros(64))
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(tmp_path / "none.ckpt"), str(tmp_path / "x.npy")])
    assert exit_info.value.code == 2
    assert "checkpoint not found" in capsys.readouterr().err
