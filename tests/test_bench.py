"""The benchmark runs both sides for real and reports what it measured (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from digits.bench.__main__ import parse_options
from digits.bench.report import spread
from digits.tutorial import run

BENCH = [sys.executable, "-m", "digits.bench"]


def test_tutorial_loop_trains_and_times_every_epoch():
    result = run(epochs=5)
    assert len(result["epoch_seconds"]) == 5
    assert all(seconds > 0 for seconds in result["epoch_seconds"])
    assert 0.5 < result["test_acc"] <= 1.0


def test_the_tutorial_script_imports_no_lightning():
    # Side A's process time must be the tutorial's alone, without Lightning's start-up.
    probe = (
        "import runpy, sys; runpy.run_module('digits.tutorial', run_name='__main__'); "
        "print(sorted(sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    modules = result.stdout.strip().splitlines()[-1]
    assert "'torch'" in modules and "'sklearn'" in modules
    assert "lightning" not in modules and "torchmetrics" not in modules


@pytest.mark.slow
def test_bench_compares_both_sides_and_reports_json():
    result = subprocess.run(
        [*BENCH, "--epochs", "3", "--repeats", "1", "--device", "cpu", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    (pair,) = json.loads(result.stdout)["cpu"]
    for side in ("tutorial", "lightning"):
        run_ = pair[side]
        assert run_["epoch_seconds"] > 0 and run_["process_seconds"] > run_["epoch_seconds"]
        assert 0 < run_["test_acc"] <= 1 and run_["peak_rss_mib"] > 50
    # B ran under a terminal: its progress bar was drawn.
    assert pair["lightning"]["terminal_bytes"] > 1000


def test_spread_reads_median_min_max():
    assert spread([3.0, 1.0, 2.0]) == "2.0 (1.0..3.0)"


@pytest.mark.parametrize(
    "args", [["--epochs", "1"], ["--repeats", "0"], ["--serve_seconds", "0.001"]]
)
def test_too_little_to_measure_is_refused(args):
    with pytest.raises(SystemExit) as exit_info:
        parse_options(args)
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--fit_args", "[--nonsense]"], "error: unrecognized arguments: --nonsense"),
        (["--versus", "[--model.lr, fast]"], 'error: Parser key "model.lr"'),
    ],
)
def test_fit_arguments_are_checked_before_anything_runs(args, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_options(args)
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--epochs", "0"], "error: --epochs must be at least 1, got 0"),
        (["--device", "gpu0"], "error: --device gpu0 is not a torch device (cpu, cuda, cuda:1...)"),
        (["--epochs", "many"], "error: argument --epochs: invalid int value: 'many'"),
        (["--device", "meta"], "error: --device meta: this loop runs on cpu or cuda"),
    ],
)
def test_the_tutorial_says_a_bad_option_in_one_line(args, expected):
    result = subprocess.run(
        [sys.executable, "-m", "digits.tutorial", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [expected]


def test_the_tutorial_on_a_gpu_it_does_not_have_says_so():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = subprocess.run(
        [sys.executable, "-m", "digits.tutorial", "--device", "cuda"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --device cuda asks for a GPU, but torch finds none here"


@pytest.mark.slow
def test_sweep_bench_runs_one_worker_against_two_on_the_same_trials():
    result = subprocess.run(
        [
            *BENCH,
            "--sweep",
            "--repeats",
            "1",
            "--sweep_trials",
            "2",
            "--sweep_folds",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    ((pair),) = json.loads(result.stdout)["sweep"]
    assert (pair["one"]["workers"], pair["two"]["workers"]) == (1, 2)
    for side in pair.values():
        assert side["trials"] == 2
        assert 0 < side["trial_seconds"] < side["process_seconds"]
