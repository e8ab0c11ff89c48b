"""scripts/threshold_target.py: each rule fitted on half the validation images, read on the rest.

docs/sure.md chooses configs/best.yaml's rule and target from what this script prints, so
it must read the half it did not fit on, with the threshold the rule gives there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from digits.dataset import DigitsSplits
from digits.reading.sure import fit_calibration
from digits.reading.trained import load_trained
from tests.conftest import script


def test_each_rule_is_read_on_the_half_it_was_not_fitted_on(trained: Path):
    target = script("threshold_target")
    sets = target.validation_sets(load_trained(trained))
    assert list(sets) == ["load_digits"]  # the default config has no drawn digits
    logits, labels = sets["load_digits"]
    assert torch.equal(labels, torch.from_numpy(DigitsSplits().arrays("val")[1]))
    rules = [("expected", 0.01), ("counted", 0.005)]
    found = target.held_out_readings(sets, rules, np.random.default_rng(0))
    halves = 2 * target.HALVINGS
    for key in [("expected 1.00%", "load_digits"), ("counted 0.50%", "load_digits")]:
        assert len(found[key]) == halves
        assert {read for read, _, _ in found[key]} == {
            len(labels) // 2,
            len(labels) - len(labels) // 2,
        }
    # The first halving, by hand: fit on one half, read the other.
    first = np.array_split(np.random.default_rng(0).permutation(len(labels)), 2)
    fitted = fit_calibration(logits[first[0]], labels[first[0]], 0.005, rule="counted")
    confidence, digit = (logits[first[1]] / fitted.temperature).softmax(-1).max(-1)
    sure = confidence >= fitted.threshold
    wrong = int((digit[sure] != labels[first[1]][sure]).sum())
    assert found["counted 0.50%", "load_digits"][0] == (len(first[1]), int(sure.sum()), wrong)
