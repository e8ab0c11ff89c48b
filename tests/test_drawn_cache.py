"""The drawn-digit cache: drawn once, read back whole, and never a reason to fail."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from digits.people.pen_digits import cached_pixels


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
