"""The generated non-digits: what each family draws, and what no family may draw.

A family that drew something a person would write as a digit would teach the network
to doubt real digits, and would count a right reading as a miss when measured.
"""

from __future__ import annotations

import numpy as np
import pytest

from digits.people.non_digits import (
    FAMILIES,
    dots,
    hatch,
    looks_like_a_one,
    non_digits,
    overlap,
    spiral,
    tick,
    wave,
)
from digits.people.pen_digits import COORDINATE_MAX


def numbered_rows(labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Pen rows whose every point holds its row's number, so a stroke names its row."""
    rows = np.arange(len(labels), dtype=np.float64)
    return np.repeat(rows, 16).reshape(len(labels), 8, 2), np.array(labels)


def test_no_family_draws_a_one_and_every_shape_fills_the_box():
    shapes, kinds = non_digits(10 * len(FAMILIES), seed=3, kinds=FAMILIES)
    assert sorted(set(kinds)) == sorted(FAMILIES)
    for strokes in shapes:
        points = np.concatenate(strokes)
        assert not looks_like_a_one(strokes)
        assert (points.max(axis=0) - points.min(axis=0)).max() == pytest.approx(COORDINATE_MAX)


def test_an_overlap_is_two_different_digits_neither_a_one_over_each_other():
    points, labels = numbered_rows([1, 1, 3, 3, 5, 7])
    generator = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        first, second = overlap(generator, (points, labels))
        rows = int(first[0, 0]), int(second[0, 0])
        # Each digit whole and where it was: in the same box, not side by side.
        assert np.array_equal(first, points[rows[0]]) and np.array_equal(second, points[rows[1]])
        assert labels[rows[0]] != labels[rows[1]] and 1 not in labels[list(rows)]
        seen.add(tuple(sorted(labels[list(rows)])))
    assert seen == {(3, 5), (3, 7), (5, 7)}


def test_an_overlap_of_too_few_kinds_of_digit_is_refused_rather_than_looping():
    with pytest.raises(ValueError, match="two different digits"):
        overlap(np.random.default_rng(0), numbered_rows([1, 3, 3, 1]))


def test_hatching_is_two_to_four_parallel_strokes_set_apart():
    generator = np.random.default_rng(0)
    counts = set()
    for _ in range(200):
        strokes = hatch(generator, numbered_rows([0]))
        counts.add(len(strokes))
        directions = [stroke[1] - stroke[0] for stroke in strokes]
        angles = np.degrees([np.arctan2(d[1], d[0]) % np.pi for d in directions])
        spread = np.ptp(np.unwrap(np.deg2rad(angles), period=np.pi))
        assert np.degrees(spread) < 15  # the hand's jitter, no more
        middles = np.array([stroke.mean(axis=0) for stroke in strokes])
        gaps = np.linalg.norm(np.diff(middles, axis=0), axis=1)
        assert gaps.min() > 15
    assert counts == {2, 3, 4}


def test_dots_are_three_to_six_short_marks():
    generator = np.random.default_rng(0)
    for _ in range(100):
        strokes = dots(generator, numbered_rows([0]))
        assert 3 <= len(strokes) <= 6
        assert max(np.linalg.norm(stroke[1] - stroke[0]) for stroke in strokes) < 12


def test_a_wave_runs_across_the_box_with_two_to_four_crests():
    generator = np.random.default_rng(0)
    for _ in range(100):
        (path,) = wave(generator, numbered_rows([0]))
        up = path[:, 1] - path[:, 1].mean()
        crossings = np.count_nonzero(np.diff(np.sign(up)) != 0)
        # Two to four crests cross the middle 4 to 8 times; the hand's jitter may add some.
        assert 3 <= crossings <= 12
        assert np.ptp(path[:, 0]) > 60  # across the box, however the hand narrowed it


def test_a_spiral_winds_outwards_two_to_three_times():
    generator = np.random.default_rng(0)
    for _ in range(100):
        (path,) = spiral(generator, numbered_rows([0]))
        offsets = path - path[0]
        distances = np.linalg.norm(offsets, axis=1)
        assert distances[-1] > 30  # from the middle outwards
        # Past its first sixth, where the hand's jitter is small against the radius.
        angles = np.unwrap(np.arctan2(offsets[12:, 1], offsets[12:, 0]))
        assert abs(angles[-1] - angles[0]) > 0.7 * 2 * 2 * np.pi  # at least 2 turns, nearly


def test_a_tick_goes_down_a_little_then_up_far_to_the_right():
    generator = np.random.default_rng(0)
    for _ in range(100):
        (path,) = tick(generator, numbered_rows([0]))
        start, bottom, end = path
        assert bottom[1] < start[1] < end[1] and start[0] < bottom[0] < end[0]
        assert np.linalg.norm(end - bottom) > 1.5 * np.linalg.norm(start - bottom)
