"""Shared fixtures: every test runs in its own empty folder, so runs never mix."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

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
