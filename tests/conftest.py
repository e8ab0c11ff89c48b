"""Shared fixtures: every test runs in its own empty folder, so runs never mix."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import signal
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from digits.dataset import DigitsSplits
from digits.fit import FitSummary

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def ctrl_c_as_in_a_terminal() -> None:
    """``preexec_fn`` for a process a test sends SIGINT to: SIGINT as a terminal's job has it.

    A test run started in the background (``&`` in a script, as CI may start it) passes
    SIGINT on ignored; Python then never raises KeyboardInterrupt, and the process trains
    on as if Ctrl-C had not been pressed.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def script(name: str):
    """``scripts/<name>.py`` as a module, for the tests of the scripts the docs rely on."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


# Keep the runs quick and quiet: no progress bar or model table in the test log.
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runslow",
        action="store_true",
        help="also run the tests marked slow (CI runs every test)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the slow tests unless ``--runslow`` asks for them (pytest's own recipe).

    They start real processes, a database or a browser, or train for long, and take over
    half of the whole suite's time; the quick run keeps a change's loop short.
    """
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip_slow)


@pytest.fixture(scope="session", autouse=True)
def drawn_digits_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The drawn digits are drawn once per test session, not into the user's own cache."""
    folder = tmp_path_factory.mktemp("digits_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGITS_CACHE", str(folder))  # subprocesses inherit it too
        # Every process a test starts prints where its threads are when it crashes or is
        # aborted (Python's faulthandler): what ``ended_within`` shows of a hang.
        patch.setenv("PYTHONFAULTHANDLER", "1")
        yield folder


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


# A small network that has seen drawn digits and non-digits: quick, reads the page's
# drawings, and is unsure of scribbles.
DRAWN_ARGS = (
    *("--data.sources+=digits.people.pen_digits.PenDigits", "--data.repeats", "2"),
    *("--data.sources+=digits.people.non_digits.NonDigits", "--data.sources.count", "600"),
    *("--data.scale", "unit"),
    *("--model.network", "ConvNet", "--model.network.channels", "16"),
    *("--model.network.hidden_size", "64", "--model.lr", "0.003"),
    *("--trainer.max_epochs", "8"),
)


@pytest.fixture(scope="session")
def trained_drawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best checkpoint of a run that trained and validated on drawn digits too."""
    folder = tmp_path_factory.mktemp("trained_drawn")
    return folder / fit_in(folder, *DRAWN_ARGS).checkpoint


def figures_by_loader(table: str, stage: str) -> dict[str, list[int]]:
    """Lightning's printed table: for each figure, the loaders whose column holds a value.

    The plain table Lightning prints without ``rich`` (not among this project's packages;
    with it installed, Lightning draws another table and this finds no header).
    """
    lines = table.splitlines()
    at = next(n for n, line in enumerate(lines) if "DataLoader 0" in line)
    header = lines[at]
    starts = [header.index(f"DataLoader {n}") for n in range(header.count("DataLoader"))]
    rows = lines[at + 2 :]  # past the header's rule, up to the closing one
    columns = {}
    for line in rows[: next(n for n, line in enumerate(rows) if line.startswith("─"))]:
        words = list(re.finditer(r"\S+", line))
        if words and words[0].group().startswith(f"{stage}/"):
            columns[words[0].group()] = [
                max(n for n, start in enumerate(starts) if start <= word.end())
                for word in words[1:]
            ]
    return columns


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


def ended_within(process: subprocess.Popen, seconds: float, *, group: bool = False) -> str:
    """The stderr of ``process`` once it has ended, waiting at most ``seconds``.

    One still running then is aborted (its whole process group with ``group``), and the
    test fails showing where each of its threads was, which Python's faulthandler prints
    on SIGABRT: a hang that happens once in many runs says what it waited on.
    """
    try:
        return process.communicate(timeout=seconds)[1]
    except subprocess.TimeoutExpired:
        pass
    for sent, wait in ((signal.SIGABRT, 30), (signal.SIGKILL, 10)):
        # A process of the group that outlives the signal would hold the pipe open.
        with contextlib.suppress(ProcessLookupError):  # it may have just ended
            if group:
                os.killpg(process.pid, sent)
            else:
                process.send_signal(sent)
        with contextlib.suppress(subprocess.TimeoutExpired):
            _, stderr = process.communicate(timeout=wait)
            break
    else:
        stderr = "(its stderr is still held open)"
    pytest.fail(f"still running {seconds:g} s later; its threads then:\n{stderr[-8000:]}")


def cmdline(pid: int) -> bytes:
    """A process's command line, NUL-separated; empty once it is gone."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


# The page, in a real headless Chromium (Debian's chromium and chromium-driver).


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium and driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        *("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"),
        *("--no-first-run", "--disable-background-networking", "--disable-component-update"),
        *("--disable-sync", "--window-size=1100,700"),
    ):
        options.add_argument(flag)
    chromium = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    yield chromium
    chromium.quit()


def accuracy_on_the_test_split(checkpoint: Path | str) -> float:
    """A checkpoint's accuracy on split seed 0's test images, read without Lightning."""
    from digits.reading.trained import load_trained

    images, labels = DigitsSplits().arrays("test", scaled=False)
    return float((load_trained(checkpoint).probabilities(images).argmax(1) == labels).mean())


def lightning_probabilities(checkpoint: Path, features: torch.Tensor) -> torch.Tensor:
    """Training's own path: the model and the calibration callback, as Lightning restores them."""
    from digits import DigitsClassifier
    from digits.reading.checkpoint import CALIBRATION_STATE, read_checkpoint
    from digits.training.calibrate import Calibrate

    model = DigitsClassifier.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    calibration = Calibrate()
    calibration.load_state_dict(read_checkpoint(checkpoint)["callbacks"][CALIBRATION_STATE])
    assert abs(calibration.temperature - 1) > 0.01  # calibrated: leaving it out would show
    with torch.no_grad():
        return calibration.probabilities(model(features))


def tiff_with_text_strip_offsets() -> bytes:
    """An 8x8 TIFF whose strip offsets claim to be text: Pillow fails on it with a
    ``TypeError``, not one of the errors it raises for a file that is not an image."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    assert data[:2] == b"II"  # little-endian: offsets below are read as such
    first_entry = struct.unpack_from("<I", data, 4)[0] + 2
    entries = struct.unpack_from("<H", data, first_entry - 2)[0]
    for offset in range(first_entry, first_entry + 12 * entries, 12):
        if struct.unpack_from("<H", data, offset)[0] == 273:  # StripOffsets
            struct.pack_into("<H", data, offset + 2, 2)  # its type: ASCII
            return bytes(data)
    raise AssertionError("Pillow's TIFF has no StripOffsets entry")
