"""scripts/second_gate.py's neighbour bank: the pen digits as the run trained on them.

The script measures what a second "sure" gate would change; its ``--bank trained``
must rebuild the run's own ``PenDigits`` source (its other writers' drawings included),
or the gate's figures in docs/sure.md would describe a bank the run never saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from digits.people.pen_digits import PenDigits
from tests.conftest import script

PEN_DIGITS = f"{PenDigits.__module__}.{PenDigits.__qualname__}"


@dataclass
class Trained:
    """What the bank reads of a trained checkpoint: its data module's settings."""

    data_settings: dict = field(default_factory=dict)


def test_the_trained_bank_rebuilds_the_runs_own_pen_digits_source():
    sources = [
        {"class_path": "digits.people.non_digits.NonDigits", "init_args": {"count": 10}},
        {"class_path": PEN_DIGITS, "init_args": {"variants": 3, "rotation": 5.0}},
    ]
    pen_digits = script("second_gate").pen_digits_trained_on(Trained({"sources": sources}))
    assert isinstance(pen_digits, PenDigits)
    assert (pen_digits.variants, pen_digits.rotation, pen_digits.slant) == (3, 5.0, 0.3)


def test_the_trained_bank_refuses_a_run_that_trained_on_no_pen_digits():
    other = {"class_path": "unseen_styles.HeldOutStyles", "init_args": {"variants": 3}}
    with pytest.raises(SystemExit, match=r"needs a run trained on a .*PenDigits source"):
        script("second_gate").pen_digits_trained_on(Trained({"sources": [other]}))
