"""digits.compare: the network and the baselines over several splits."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from digits.tools.baseline import main as baseline
from digits.tools.compare import main, parse_seeds
from tests.conftest import ctrl_c_as_in_a_terminal, ended_within


def test_split_seeds_accept_ranges_and_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,7") == [0, 2, 7]
    assert parse_seeds("1-2,5") == [1, 2, 5]
    for bad in ("", "a-b", "3-", "1,1"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_compare_writes_every_score_and_a_summary(tmp_path: Path, capsys):
    scores = main(
        [
            "--split_seeds", "0-1",
            "--models", "[knn]",
            "--fit_args", '[--trainer.max_epochs, "2"]',
            "--output", str(tmp_path / "scores.csv"),
        ]
    )  # fmt: skip
    assert {(score.split_seed, score.model) for score in scores} == {
        (0, "network:default"), (0, "knn"), (1, "network:default"), (1, "knn"),
    }  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert len(rows) == 4
    assert {row["model"] for row in rows} == {"network:default", "knn"}
    output = capsys.readouterr().out
    assert "the network beats knn on" in output
    # Each split's network run is its own run folder with that split seed.
    configs = sorted((tmp_path / "lightning_logs/digits").glob("version_*/config.yaml"))
    split_seeds = [yaml.safe_load(config.read_text())["data"]["split_seed"] for config in configs]
    assert split_seeds == [0, 1]


def test_the_baselines_see_the_data_as_the_configured_run_saw_it(tmp_path: Path):
    standard = tmp_path / "standard.yaml"
    standard.write_text("data:\n  scale: standard\n")
    earlier = tmp_path / "compare.csv"  # the default output, from an earlier comparison
    earlier.write_text("an earlier comparison\n")
    scores = main(
        [
            *("--split_seeds", "1", "--models", "[logistic_regression]", "--config", str(standard)),
            *("--fit_args", '[--trainer.max_epochs, "1"]'),
        ]
    )
    compared = {score.model: score.test_acc for score in scores}
    assert set(compared) == {"network:standard", "logistic_regression"}
    # The earlier file is kept; this comparison's scores go beside it.
    assert earlier.read_text() == "an earlier comparison\n"
    assert len(list(csv.DictReader((tmp_path / "compare-2.csv").open()))) == 2
    # An --output named by hand that exists is refused before anything trains.
    with pytest.raises(SystemExit) as exit_info:
        main(["--split_seeds", "1", "--output", str(earlier)])
    assert exit_info.value.code == 2
    assert not (tmp_path / "lightning_logs/digits/version_1").exists()
    on_standard = baseline(["--models", "[logistic_regression]", "--data.split_seed", "1",
                            "--data.scale", "standard"])  # fmt: skip
    on_raw = baseline(["--models", "[logistic_regression]", "--data.split_seed", "1"])
    assert compared["logistic_regression"] == on_standard[0].test_acc != on_raw[0].test_acc


def test_compare_as_a_user_runs_it_prints_no_warning(tmp_path: Path):
    command = [sys.executable, "-m", "digits.compare", "--split_seeds", "0", "--models", "[knn]"]
    result = subprocess.run(
        [*command, "--fit_args", '[--trainer.max_epochs, "1"]'],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warn" not in (result.stdout + result.stderr).lower()
    assert "the network beats knn on" in result.stdout


def test_a_comparison_stopped_midway_keeps_the_scores_of_the_splits_it_finished(tmp_path: Path):
    """Each split's scores are written as soon as they are known: with configs/best.yaml a
    split is minutes of training, and Ctrl-C in the fifth would otherwise lose the four."""
    command = [sys.executable, "-m", "digits.compare", "--split_seeds", "0-1", "--models", "[knn]"]
    compare = subprocess.Popen(
        [*command, "--fit_args", '[--trainer.max_epochs, "300"]', "--output", "scores.csv"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    second_run = tmp_path / "lightning_logs/digits/version_1/checkpoints/last.ckpt"
    deadline = time.monotonic() + 240
    while not second_run.exists():  # the second split is training
        assert compare.poll() is None, compare.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "the second split never started training"
        time.sleep(0.2)
    compare.send_signal(signal.SIGINT)
    stderr = ended_within(compare, 120)
    assert compare.returncode == 130, stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert [(row["split_seed"], row["model"]) for row in rows] == [
        ("0", "network:default"),
        ("0", "knn"),
    ]
    assert 0.5 < float(rows[0]["test_acc"]) <= 1.0
    assert "scores of the splits done: scores.csv" in stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--fit_args", "[--trainer.max_epochz, '1']"], "error: unrecognized arguments"),
        (
            ["--fit_args", "[--data.split_seed, '3']"],
            "error: --fit_args sets --data.split_seed, which compare sets for each split; "
            "give the splits as --split_seeds",
        ),
        (["--fit_args", "[--data.split_seed=3]"], "error: --fit_args sets --data.split_seed"),
        (["--output", "taken.csv/scores.csv"], "error: taken.csv is a file, not a folder"),
        (["--output", "/sys/digits/scores.csv"], "error: /sys cannot be written in ("),
    ],
)
def test_a_mistake_is_one_line_and_exit_2_and_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, args: list[str], expected: str
):
    monkeypatch.chdir(tmp_path)
    Path("taken.csv").write_text("earlier work")
    with pytest.raises(SystemExit) as exit_info:
        main(["--split_seeds", "0", "--models", "[knn]", "--output", "scores.csv", *args])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(expected)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken.csv"]


def test_split_seeds_is_spelled_as_every_other_flag_and_the_first_spelling_still_works():
    from digits.tools.compare import parser

    assert parser().parse_args(["--split_seeds", "3"]).split_seeds == "3"
    assert parser().parse_args(["--split-seeds", "0,2"]).split_seeds == "0,2"
    assert "--split_seeds" in parser().format_help()
