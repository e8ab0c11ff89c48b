"""python -m digits.drawn: a checkpoint scored on pen digits drawn as the page draws them.

Run as a user runs it, on a small network that trained on drawn digits, and checked
against the same drawings read here through the checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits.people.drawn import main
from digits.people.non_digits import FAMILIES, MEASURING_SEED, TRAINING_KINDS, non_digit_pixels
from digits.people.pen_digits import DrawnSplits, drawn_rows, read_pen_digits
from digits.reading.trained import load_trained
from tests.conftest import scalars

DRAWN = [sys.executable, "-m", "digits.drawn"]


def read_by_hand(checkpoint: Path) -> tuple[np.ndarray, np.ndarray]:
    """The drawn test rows of the checkpoint's split, read here: (digits read, labels)."""
    trained = load_trained(checkpoint)
    rows = DrawnSplits(split_seed=trained.data_settings["split_seed"]).indices["test"]
    pixels, labels = drawn_rows(tuple(rows.tolist()))
    return trained.probabilities(pixels).argmax(axis=1), labels


def test_the_command_prints_the_accuracy_of_the_drawn_test_rows(trained_drawn: Path, tmp_path):
    done = subprocess.run(
        [*DRAWN, "--ckpt_path", str(trained_drawn), "--output", "report"],
        capture_output=True,
        text=True,
        check=True,
    )
    read, labels = read_by_hand(trained_drawn)
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"drawn digits  {len(labels)} (the test rows")
    assert lines[1] == f"accuracy      {(read == labels).mean():.4f}"
    shown = [float(value) for value in lines[3].split()[2:]]
    by_hand = [(read[labels == digit] == digit).mean() for digit in range(10)]
    assert shown == pytest.approx(by_hand, abs=5e-4)
    assert done.stderr == ""
    for name in ("confusion_matrix.png", "misread.png"):
        with Image.open(tmp_path / "report" / name) as picture:
            assert picture.width > 300 and picture.height > 100


def test_json_holds_the_confusion_matrix_and_a_report_never_overwrites_another(
    trained_drawn: Path, tmp_path: Path, capsys
):
    first = main(["--ckpt_path", str(trained_drawn), "--json"])
    second = main(["--ckpt_path", str(trained_drawn), "--json"])
    printed = json.loads(capsys.readouterr().out.split("\n}\n")[0] + "\n}")
    read, labels = read_by_hand(trained_drawn)
    matrix = np.array(printed["confusion_matrix"])
    assert matrix.sum() == len(labels) and np.trace(matrix) == (read == labels).sum()
    assert matrix[3].sum() == (labels == 3).sum()  # true digits down
    assert (matrix[:, 3].sum()) == (read == 3).sum()  # read digits across
    assert printed["accuracy"] == first.accuracy
    # Beside the run, and the second report in a folder of its own.
    run = trained_drawn.parent.parent
    assert Path(first.pictures["confusion"]).parent == run / "drawn" / trained_drawn.stem
    assert Path(second.pictures["confusion"]).parent.name == f"{trained_drawn.stem}-2"


def test_another_file_of_pen_digits_is_read_whole(trained_drawn: Path, tmp_path: Path):
    points, labels = read_pen_digits()
    table = np.column_stack([points.reshape(len(points), -1)[:30].astype(int), labels[:30]])
    # No header, numbers padded with spaces, Windows line ends: a file as others may write it.
    np.savetxt(tmp_path / "mine.csv", table, fmt="%4d", delimiter=",", newline="\r\n")
    result = main(["--ckpt_path", str(trained_drawn), "--pen_digits", str(tmp_path / "mine.csv")])
    assert result.count == 30 and "mine.csv" in result.source


@pytest.mark.parametrize(
    ("content", "message"),
    [("1,2,3\n", "expected rows of 16 coordinates and a digit"), ("a,b\n", "17 whole numbers")],
)
def test_a_bad_file_is_one_line_and_exit_2(trained_drawn: Path, tmp_path: Path, content, message):
    (tmp_path / "bad.csv").write_text("x1,y1\n" + content)
    done = subprocess.run(
        [*DRAWN, "--ckpt_path", str(trained_drawn), "--pen_digits", "bad.csv"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert not (tmp_path / "drawn").exists()


def test_a_binary_file_of_pen_digits_is_named_in_its_one_line(
    trained_drawn: Path, tmp_path: Path, capsys
):
    np.save(tmp_path / "points.npy", np.zeros((3, 17)))
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained_drawn), "--pen_digits", "points.npy"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: points.npy: not a text file; expected rows of 16 coordinates and a digit "
        "(UCI pen digits' CSV)"
    ]


@pytest.mark.parametrize("output", ["taken.txt/pictures", "/sys/digits-pictures"])
def test_an_output_that_cannot_be_written_is_one_line_and_exit_2_before_any_scoring(
    trained_drawn: Path, tmp_path: Path, capsys, output: str
):
    (tmp_path / "taken.txt").write_text("earlier work")
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained_drawn), "--output", output])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {Path(output).parent} ")
    assert line.endswith("; choose another --output")
    assert (tmp_path / "taken.txt").read_text() == "earlier work"


@pytest.mark.parametrize("output", ["taken.txt", "report"])
def test_an_output_that_exists_is_refused_not_renamed(
    trained_drawn: Path, tmp_path: Path, capsys, output: str
):
    """A folder named by the user is theirs: numbering it (report-2) put the pictures
    where they did not look, and a file's name became a folder's (taken.txt-2)."""
    (tmp_path / "taken.txt").write_text("earlier work")
    (tmp_path / "report").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained_drawn), "--output", output])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {output} exists; choose another --output"
    ]
    assert sorted(path.name for path in tmp_path.iterdir() if path.name != "lightning_logs") == [
        "report",
        "taken.txt",
    ]


def test_a_run_on_drawn_digits_shows_their_curve_beside_val_acc(trained_drawn: Path):
    run = trained_drawn.parent.parent
    val, drawn = scalars(run, "val/acc"), scalars(run, "val/drawn_acc")
    assert [step for step, _ in drawn] == [step for step, _ in val] and len(val) == 8
    assert drawn[-1][1] > 0.8  # it learned to read them
    (tested,) = scalars(run, "test/drawn_acc")
    read, labels = read_by_hand(trained_drawn)
    assert tested[1] == pytest.approx((read == labels).mean(), abs=1e-6)


def test_sure_readings_and_non_digits_are_counted_at_the_checkpoints_threshold(
    trained_drawn: Path, capsys
):
    result = main(["--ckpt_path", str(trained_drawn), "--json"])
    printed = json.loads(capsys.readouterr().out)
    trained = load_trained(trained_drawn)
    splits = DrawnSplits(split_seed=trained.data_settings["split_seed"])
    pixels, labels = drawn_rows(tuple(splits.indices["test"].tolist()))
    probabilities = trained.probabilities(pixels)
    sure = probabilities.max(axis=1) >= trained.threshold
    right = probabilities.argmax(axis=1) == labels
    assert printed["threshold"] == trained.threshold > 0
    assert printed["coverage"] == pytest.approx(sure.mean())
    assert printed["sure_accuracy"] == pytest.approx(right[sure].mean())
    # Every family, 100 each; the ones made of pen digits from the split's test rows.
    test_rows = sorted(splits.indices["test"].tolist())
    declined = {}
    for family in FAMILIES:
        rows = test_rows if family in ("partial", "pair", "overlap") else None
        shapes = non_digit_pixels(100, MEASURING_SEED, (family,), rows)
        declined[family] = (trained.probabilities(shapes).max(axis=1) < trained.threshold).mean()
    assert printed["not_sure_by_family"] == pytest.approx(declined)
    assert printed["non_digits"] == 100 * len(FAMILIES)
    assert printed["trained_on"] == list(dict.fromkeys(TRAINING_KINDS))  # conftest's NonDigits
    never = [declined[family] for family in FAMILIES if family not in TRAINING_KINDS]
    assert printed["not_sure_never_trained_on"] == pytest.approx(sum(never) / len(never))
    # Trained with non-digits, the network declines most of those of its own families.
    assert min(declined[family] for family in TRAINING_KINDS) > 0.8
    assert 0 <= printed["ece"] < 0.1
    assert Path(result.pictures["thresholds"]).is_file()
    everything = main(["--ckpt_path", str(trained_drawn), "--threshold", "0"])
    assert everything.coverage == 1 and everything.non_digits_not_sure == 0
