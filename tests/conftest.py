"""Shared fixtures: every test runs in its own empty folder, so runs never mix."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from digits.dataset import DigitsSplits
from digits.fit import FitSummary

# Keep the runs quick and quiet: no progress bar or model table in the test log.
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    # main(args) is the whole command line; pytest's own arguments are not part of it.
    monkeypatch.setattr(sys, "argv", ["digits"])
    return tmp_path


def read_events(log_dir: Path) -> EventAccumulator:
    """TensorBoard's own reader over a run's event files."""
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def scalars(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of one scalar curve as TensorBoard would draw it."""
    return [(event.step, event.value) for event in read_events(log_dir).Scalars(tag)]


def fit_in(folder: Path, *args: str) -> FitSummary:
    """``python -m digits.fit ARGS`` run in-process from ``folder``, for shared fixtures."""
    from digits.fit import main

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setattr(sys, "argv", ["digits"])
        return main([*QUIET, *args])


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best checkpoint of one short run, shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("trained")
    return folder / fit_in(folder, "--trainer.max_epochs", "15").checkpoint


# Not the defaults, so that what the defaults make a no-op (raw scaling is the identity,
# the default network and split are what a tool would assume anyway) is exercised.
STANDARD_ARGS = (
    *("--data.scale", "standard", "--data.split_seed", "2"),
    *("--model.network.hidden_sizes", "[64]", "--trainer.max_epochs", "15"),
)


@pytest.fixture(scope="session")
def trained_standard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best checkpoint of a run with standard scaling, a 64-unit MLP and split seed 2."""
    folder = tmp_path_factory.mktemp("trained_standard")
    return folder / fit_in(folder, *STANDARD_ARGS).checkpoint


def split_for_testing(checkpoint: Path) -> tuple[np.ndarray, np.ndarray]:
    """The test split of the checkpoint's own data settings, in load_digits' 0..16."""
    settings = torch.load(checkpoint, weights_only=True)["datamodule_hyper_parameters"]
    return DigitsSplits.from_settings(settings).arrays("test", scaled=False)


def children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (Linux's /proc)."""
    found = []
    for path in Path("/proc").iterdir():
        if path.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((path / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(path.name))
    return found


def cmdline(pid: int) -> bytes:
    """A process's command line, NUL-separated; empty once it is gone."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""
