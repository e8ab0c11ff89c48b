"""The command line as a user meets it: help, mistakes, and the LightningCLI subcommands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from digits.__main__ import main as digits_main
from digits.fit import main as fit_main
from tests.conftest import QUIET, scalars


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_help_exits_zero_and_lists_the_project_options():
    result = run_module("digits.fit", "--help")
    assert result.returncode == 0
    for option in (
        "--model.lr",
        "--data.split_seed",
        "--checkpoint.monitor",
        "--trainer.max_epochs",
    ):
        assert option in result.stdout


def test_an_unknown_flag_is_one_line_and_exit_code_2(tmp_path: Path):
    result = run_module("digits.fit", "--no-such-flag", "1")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unrecognized arguments: --no-such-flag 1"
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--trainer.max_epochs", "abc"], 'Parser key "trainer.max_epochs"'),
        (["--model.lr", "fast"], 'Parser key "model.lr"'),
        (["--data.scale", "log"], 'Parser key "data.scale"'),
        (["--data.batch_size", "0"], "data.batch_size must be at least 1"),
        (["--model.lr", "0"], "model.lr must be positive"),
        (["--config", "missing.yaml"], "File does not exist"),
    ],
)
def test_bad_values_are_one_line_and_exit_code_2(args, expected, capsys, tmp_path: Path):
    with pytest.raises(SystemExit) as exit_info:
        fit_main(args)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0]
    assert not (tmp_path / "lightning_logs").exists()


def test_subcommands_fit_then_test_and_predict_a_checkpoint(tmp_path: Path):
    digits_main(["fit", *QUIET, "--trainer.max_epochs", "2"])
    checkpoint = tmp_path / "lightning_logs/digits/version_0/checkpoints/last.ckpt"
    assert checkpoint.is_file()

    digits_main(["test", *QUIET, "--ckpt_path", str(checkpoint)])
    tested = scalars(tmp_path / "lightning_logs/digits/version_1", "test/acc")
    assert len(tested) == 1 and tested[0][1] > 0.3

    digits_main(["validate", *QUIET, "--ckpt_path", str(checkpoint)])
    assert len(scalars(tmp_path / "lightning_logs/digits/version_2", "val/acc")) == 1

    digits_main(["predict", *QUIET, "--ckpt_path", str(checkpoint)])
