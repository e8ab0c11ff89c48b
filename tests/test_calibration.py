"""Calibration: the temperature, the "sure" threshold, what a run records and what old files mean.

The method is checked on numbers made to have a known answer; a run is checked by what
it leaves behind: the checkpoint's buffers, TensorBoard's scalars and pictures, the
summary's lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from digits import DigitsClassifier
from digits.calibration import calibrate, choose_threshold, fit_temperature, with_calibration
from digits.checkpoint_file import read_checkpoint, write_atomically
from digits.dataset import DigitsSplits
from digits.fit import main
from digits.inference import load_trained
from tests.conftest import QUIET, read_events, scalars


def test_the_fitted_temperature_is_the_one_that_made_the_labels():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4000, 10, generator=generator) * 4
    # Labels drawn from softmax(logits / 2.5): the logits are 2.5 times too sure.
    labels = torch.multinomial((logits / 2.5).softmax(dim=1), 1, generator=generator).squeeze(1)
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(2.5, rel=0.05)
    assert F.cross_entropy(logits / temperature, labels) < F.cross_entropy(logits, labels)


def test_the_threshold_keeps_the_surest_readings_until_the_target_error():
    # 100 readings: surest first; the 50th and the 90th are wrong.
    confidence = torch.linspace(0.99, 0.5, 100)
    probabilities = torch.zeros(100, 10)
    probabilities[:, 0] = confidence
    probabilities[:, 1] = 1 - confidence
    labels = torch.zeros(100, dtype=torch.long)
    labels[[49, 89]] = 1
    # At 1.5%, the 89 surest (1 wrong: 1.1%); the 90th makes it 2 in 90.
    assert choose_threshold(probabilities, labels, 0.015) == pytest.approx(float(confidence[88]))
    # At 1%, the 49 surest, none wrong: 1 wrong needs 100 readings, which hold 2.
    assert choose_threshold(probabilities, labels, 0.01) == pytest.approx(float(confidence[48]))
    assert choose_threshold(probabilities, labels, 0.02) == pytest.approx(float(confidence[99]))
    # If even the surest is wrong, nothing is sure.
    labels[0] = 1
    assert choose_threshold(probabilities, labels, 0.0) > float(confidence[0])


def test_a_checkpoint_from_before_calibration_means_temperature_1_and_every_reading_sure(
    trained: Path, tmp_path: Path
):
    checkpoint = read_checkpoint(trained)
    assert float(checkpoint["state_dict"]["temperature"]) != 1.0  # this run was calibrated
    for key in ("temperature", "sure_threshold"):
        del checkpoint["state_dict"][key]
    old = tmp_path / "old.ckpt"
    write_atomically(checkpoint, old)
    network = load_trained(old)
    assert (network.temperature, network.threshold) == (1.0, 0.0)
    model = DigitsClassifier.load_from_checkpoint(old, weights_only=True)
    assert float(model.temperature) == 1.0 and float(model.sure_threshold) == 0.0
    assert with_calibration({})["temperature"] == 1.0


def test_a_run_fits_its_calibration_on_validation_and_records_it(trained: Path):
    run = trained.parent.parent
    checkpoint = read_checkpoint(trained)["state_dict"]
    last = read_checkpoint(trained.parent / "last.ckpt")["state_dict"]
    temperature = float(checkpoint["temperature"])
    assert float(last["temperature"]) == temperature  # both files carry it
    ((_, logged),) = scalars(run, "calibration/temperature")
    assert logged == pytest.approx(temperature)
    ((_, threshold),) = scalars(run, "calibration/threshold")
    assert threshold == pytest.approx(float(checkpoint["sure_threshold"]))
    events = read_events(run)
    assert len(scalars(run, "val/ece")) == len(scalars(run, "val/acc"))
    (before,), (after,) = scalars(run, "test/ece_unscaled"), scalars(run, "test/ece")
    assert before[1] != after[1]  # the test was scored with and without the temperature
    assert "test/reliability" in events.Tags()["images"]


def test_the_calibration_is_fitted_to_the_weights_that_are_tested():
    # At this learning rate the best epoch (the one tested) is not the last.
    summary = main([*QUIET, "--model.lr", "0.03", "--trainer.max_epochs", "6"])
    best_path, last_path = Path(summary.checkpoint), Path(summary.log_dir) / "checkpoints/last.ckpt"
    assert read_checkpoint(best_path)["epoch"] != read_checkpoint(last_path)["epoch"]
    images, labels = DigitsSplits().arrays("val")

    def refitted(path: Path) -> tuple[float, float]:
        model = DigitsClassifier.load_from_checkpoint(path, weights_only=True)
        with torch.no_grad():
            logits = model(torch.from_numpy(images))
        fitted = calibrate(logits, torch.from_numpy(labels))
        return fitted.temperature, fitted.threshold

    stored = read_checkpoint(best_path)["state_dict"]
    kept = (float(stored["temperature"]), float(stored["sure_threshold"]))
    assert kept == pytest.approx(refitted(best_path), rel=1e-4)
    assert kept[0] != pytest.approx(refitted(last_path)[0], rel=1e-3)
