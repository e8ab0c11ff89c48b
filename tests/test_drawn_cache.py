"""The drawn-digit cache: drawn once, read back whole, and never a reason to fail."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import numpy as np
import pytest
from lightning.pytorch.trainer.states import TrainerFn

from digits.data import DigitsDataModule
from digits.people import non_digits, pen_digits
from digits.people.non_digits import NonDigits, _non_digit_pixels
from digits.people.pen_digits import (
    DrawnSplits,
    PenDigits,
    cached_pixels,
    drawn_rows,
    other_writers_rows,
)


class Drawer:
    """Counts its drawings, so a test sees whether the cache was read or drawn again."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return np.arange(12, dtype=np.float32).reshape(3, 4)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DIGITS_CACHE", str(folder))
    return folder


def test_drawn_once_then_read_back_as_readable_as_any_file_the_user_writes(cache: Path):
    draw = Drawer()
    previous = os.umask(0o022)
    try:
        first = cached_pixels("shapes-a", draw)
    finally:
        os.umask(previous)
    second = cached_pixels("shapes-a", draw)
    assert draw.calls == 1
    np.testing.assert_array_equal(first, second)
    (kept,) = cache.iterdir()  # the one file, no temporary left beside it
    assert kept.name.startswith("shapes-") and kept.suffix == ".npy"
    assert kept.stat().st_mode & 0o777 == 0o644
    assert not second.flags.writeable  # shared by every reader in the process


def test_a_damaged_cache_file_is_drawn_again_and_replaced(cache: Path):
    draw = Drawer()
    cached_pixels("shapes-b", draw)
    (kept,) = cache.iterdir()
    kept.write_bytes(kept.read_bytes()[:40])  # cut short, as a full disk would leave it
    np.testing.assert_array_equal(cached_pixels("shapes-b", draw), Drawer()())
    assert draw.calls == 2
    np.testing.assert_array_equal(np.load(kept), Drawer()())


def test_a_cache_that_cannot_be_written_costs_only_the_time(cache: Path):
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("a file where the cache folder would be")
    draw = Drawer()
    np.testing.assert_array_equal(cached_pixels("shapes-c", draw), Drawer()())
    cached_pixels("shapes-c", draw)
    assert draw.calls == 2
    assert cache.read_text() == "a file where the cache folder would be"


def forget_what_this_process_drew() -> None:
    """As another process of the run starts: nothing drawn in memory, only the disk cache."""
    for kept in (drawn_rows, other_writers_rows, _non_digit_pixels):
        kept.cache_clear()


def test_preparing_the_data_draws_what_the_stage_reads_once_for_every_process_on_the_machine(
    cache: Path, monkeypatch: pytest.MonkeyPatch
):
    """Lightning calls ``prepare_data`` in one process per machine, before any process sets
    up: what it draws, the others read from the cache rather than each draw it at once.
    It draws what the stage reads, no more: fitting never draws the test rows."""
    drawings: list[int] = []  # how many images each drawing made

    def drawn_by_count(points: np.ndarray, hand_list: list) -> np.ndarray:
        drawings.append(len(points))
        return np.zeros((len(points), 64), dtype=np.float32)

    monkeypatch.setattr(pen_digits, "drawn_pixels", drawn_by_count)
    monkeypatch.setattr(non_digits, "drawn_pixels", drawn_by_count)
    sources = [PenDigits(), NonDigits(count=40)]
    rows = {split: len(kept) for split, kept in DrawnSplits().indices.items()}
    data = DigitsDataModule(sources=sources)
    data.trainer = L.Trainer(logger=False, enable_checkpointing=False)
    forget_what_this_process_drew()
    try:
        data.trainer.state.fn = TrainerFn.FITTING
        data.prepare_data()
        assert sorted(drawings) == sorted([rows["train"], rows["val"], 40])
        forget_what_this_process_drew()  # as another process of the run starts
        DigitsDataModule(sources=sources).setup("fit")
        assert len(drawings) == 3  # it read them all
        data.trainer.state.fn = TrainerFn.TESTING
        data.prepare_data()
        assert drawings[3:] == [rows["test"]]
    finally:
        forget_what_this_process_drew()  # nothing drawn by the stand-in is left to later tests
