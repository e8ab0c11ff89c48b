"""The command line as a user meets it: help, mistakes, and the LightningCLI subcommands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from digits.__main__ import main as digits_main
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


def test_a_default_run_prints_no_warning():
    result = run_module("digits.fit", "--trainer.max_epochs", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "warn" not in output.lower(), output
    assert "Tip:" not in output  # Lightning's advertisement for a cloud logging service
    assert "GPU available" in output  # while its lines about this run stay
    assert result.stdout.splitlines()[-4].startswith("test/acc")


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
