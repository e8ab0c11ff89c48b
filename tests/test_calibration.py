"""Calibration: the temperature, the "sure" threshold, what a run records and what old files mean.

The method is checked on numbers made to have a known answer; a run is checked by what
it leaves behind: the calibration callback's state in the checkpoints, TensorBoard's
scalars and pictures, the summary's lines.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

from digits import DigitsClassifier
from digits.__main__ import main as digits_main
from digits.dataset import DigitsSplits
from digits.fit import main
from digits.reading.checkpoint import CALIBRATION_STATE, read_checkpoint, write_atomically
from digits.reading.sure import (
    choose_threshold,
    counted_threshold,
    expected_threshold,
    fit_calibration,
    fit_temperature,
)
from digits.reading.trained import load_trained
from digits.training.calibrate import CALIBRATION_BINS, Calibrate
from tests.conftest import QUIET, read_events, scalars


def test_the_fitted_temperature_is_the_one_that_made_the_labels():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4000, 10, generator=generator) * 4
    # Labels drawn from softmax(logits / 2.5): the logits are 2.5 times too sure.
    labels = torch.multinomial((logits / 2.5).softmax(dim=1), 1, generator=generator).squeeze(1)
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(2.5, rel=0.05)
    assert F.cross_entropy(logits / temperature, labels) < F.cross_entropy(logits, labels)


def test_a_validation_set_read_without_a_mistake_leaves_the_temperature_at_one():
    """With every reading right, the likelihood only grows as T shrinks: nothing to fit.

    A small validation set (a user's own data, or a strong network's 135 digits) can be
    read without a mistake; fitting T there made every probability 1.000 and nothing
    "not sure".
    """
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (40,), generator=generator)
    logits = torch.randn(40, 3, generator=generator) + 8 * F.one_hot(labels, 3)
    assert bool((logits.argmax(dim=1) == labels).all())
    assert fit_temperature(logits, labels) == 1.0
    labels[0] = (logits[0].argmax() + 1) % 3  # one mistake: a temperature exists again
    assert fit_temperature(logits, labels) != 1.0


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


def test_a_threshold_never_splits_readings_of_equal_probability():
    # Three readings at exactly 1.0 (as float32 rounds the surest), one of them wrong, and
    # a wrong one below: 1 in 3 is beyond 30%, whichever of the three comes first.
    probabilities = torch.tensor([[1.0, 0.0]] * 3 + [[0.9, 0.1]])
    for wrong in range(3):
        labels = torch.tensor([0, 0, 0, 1])
        labels[wrong] = 1
        assert counted_threshold(probabilities, labels, 0.3) > 1.0  # nothing sure
        assert counted_threshold(probabilities, labels, 0.34) == 1.0  # the three, not two


def test_an_unknown_rule_or_an_expected_error_of_zero_is_refused():
    probabilities, labels = torch.tensor([[0.9, 0.1]]), torch.zeros(1, dtype=torch.long)
    with pytest.raises(ValueError, match="one of counted, expected, got 'Expected'"):
        choose_threshold(probabilities, labels, 0.01, "Expected")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="above 0"):
        expected_threshold(probabilities, 0.0)
    with pytest.raises(ValueError, match=r"calibrate\.rule must be one of"):
        Calibrate(rule="Expected")  # type: ignore[arg-type]


def test_an_expected_error_of_zero_is_one_line_before_anything_is_written(
    tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main([*QUIET, "--calibrate.rule", "expected", "--calibrate.target_error", "0"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error == "error: calibrate.target_error must be above 0 for calibrate.rule expected"
    assert not (tmp_path / "lightning_logs").exists()


def test_the_expected_rule_keeps_the_surest_readings_until_they_expect_the_target_error():
    # 100 readings, surest first, 0.999 down to 0.900 in steps of 0.001: the n surest
    # expect 0.001 + 0.0005 (n - 1) of them wrong, whatever the labels say.
    confidence = torch.linspace(0.999, 0.9, 100, dtype=torch.float64)
    probabilities = torch.stack([confidence, 1 - confidence], dim=1)
    labels = torch.zeros(100, dtype=torch.long)
    assert expected_threshold(probabilities, 0.0102) == pytest.approx(float(confidence[18]))
    assert expected_threshold(probabilities, 0.0202) == pytest.approx(float(confidence[38]))
    labels[:50] = 1  # half of them wrong: the counted rule sees it, the expected does not
    assert choose_threshold(probabilities, labels, 0.0102, "expected") == pytest.approx(
        float(confidence[18])
    )
    assert choose_threshold(probabilities, labels, 0.0102, "counted") > float(confidence[0])
    # If even the surest expects more, nothing is sure.
    assert expected_threshold(probabilities, 0.0005) > float(confidence[0])


def test_two_confident_mistakes_leave_the_counted_rule_nothing_sure_but_not_the_expected():
    """562 readings (the drawn validation digits) at a target of 0.25%: one mistake allowed.

    Two near the top put the counted threshold above them; the probabilities still expect
    few mistakes among the surest readings, and the expected rule keeps them sure.
    """
    generator = torch.Generator().manual_seed(0)
    confidence = 1 - torch.rand(562, generator=generator, dtype=torch.float64) ** 4 * 0.05
    confidence = confidence.sort(descending=True).values
    probabilities = torch.stack([confidence, 1 - confidence], dim=1)
    labels = torch.zeros(562, dtype=torch.long)
    labels[[3, 10]] = 1
    counted = counted_threshold(probabilities, labels, 0.0025)
    expected = expected_threshold(probabilities, 0.0025)
    assert (confidence >= counted).sum() == 3  # the three readings above the first mistake
    # The expected rule, by hand: the most readings whose mean of 1 - p is within 0.25%.
    kept = max(n for n in range(1, 563) if float((1 - confidence[:n]).mean()) <= 0.0025)
    assert (confidence >= expected).sum() == kept
    assert kept > 281  # most of them


def test_every_validation_set_keeps_its_sure_readings_within_the_target_error():
    # Set 0: 400 readings, all right. Set 1: 100 readings, surest first; the 30th is wrong.
    easy = torch.linspace(0.999, 0.6, 400)
    hard = torch.linspace(0.99, 0.6, 100)
    confidence = torch.cat([easy, hard])
    logits = torch.stack([confidence.logit(), torch.zeros(500)], dim=1) * 50
    labels = torch.zeros(500, dtype=torch.long)
    labels[400 + 29] = 1
    sets = torch.cat([torch.zeros(400), torch.ones(100)]).long()
    pooled = fit_calibration(logits, labels, target_error=0.005)
    each = fit_calibration(logits, labels, target_error=0.005, sets=sets)
    probabilities = (logits / each.temperature).softmax(dim=1)
    top = probabilities.max(dim=1).values
    # Pooled, the easy set's right readings let the hard set's error in; set by set, the
    # hard set's 29 surest readings are sure and its wrong one is not.
    assert each.threshold > pooled.threshold
    assert (top[400:] >= each.threshold).sum() == 29
    assert each.threshold == pytest.approx(
        choose_threshold(probabilities[400:], labels[400:], 0.005)
    )


def raw(path: Path) -> dict:
    """A checkpoint as torch reads it, before this project upgrades it."""
    return torch.load(path, map_location="cpu", weights_only=True)


def test_a_checkpoint_from_before_calibration_means_temperature_1_and_every_reading_sure(
    trained: Path, tmp_path: Path
):
    checkpoint = raw(trained)
    assert checkpoint["callbacks"][CALIBRATION_STATE]["temperature"] != 1.0  # calibrated
    del checkpoint["callbacks"][CALIBRATION_STATE]
    old = tmp_path / "old.ckpt"
    write_atomically(checkpoint, old)
    network = load_trained(old)
    assert (network.temperature, network.threshold) == (1.0, 0.0)


def test_a_checkpoint_with_the_calibration_in_the_model_reads_and_tests_as_before(
    trained: Path, tmp_path: Path
):
    """Earlier files kept the two numbers as model buffers, and outlier_weight in the model."""
    checkpoint = raw(trained)
    kept = checkpoint["callbacks"].pop(CALIBRATION_STATE)
    checkpoint["state_dict"]["temperature"] = torch.tensor(kept["temperature"])
    checkpoint["state_dict"]["sure_threshold"] = torch.tensor(kept["threshold"])
    checkpoint["hyper_parameters"]["outlier_weight"] = 0.5
    old = tmp_path / "old.ckpt"
    write_atomically(checkpoint, old)
    network = load_trained(old)
    # float32 buffers then, Python floats now
    assert (network.temperature, network.threshold) == pytest.approx(
        (kept["temperature"], kept["threshold"]), rel=1e-6
    )
    model = DigitsClassifier.load_from_checkpoint(old, weights_only=True)
    assert set(model.state_dict()) == set(raw(trained)["state_dict"])
    # Lightning reads it through the project's checkpoint plugin: the test of the old file
    # applies its temperature, as the run's own test of the new file did.
    digits_main(["test", *QUIET, "--ckpt_path", str(old)])
    ((_, old_ece),) = scalars(tmp_path / "lightning_logs/digits/version_0", "test/ece")
    ((_, run_ece),) = scalars(trained.parent.parent, "test/ece")
    assert old_ece == pytest.approx(run_ece, rel=1e-5)


def test_a_run_fits_its_calibration_on_validation_and_records_it(trained: Path):
    run = trained.parent.parent
    kept = raw(trained)["callbacks"][CALIBRATION_STATE]
    last = raw(trained.parent / "last.ckpt")["callbacks"][CALIBRATION_STATE]
    assert set(last) == set(kept) == {"temperature", "threshold"}  # both files carry one
    ((_, logged),) = scalars(run, "calibration/temperature")
    assert logged == pytest.approx(kept["temperature"])
    ((_, threshold),) = scalars(run, "calibration/threshold")
    assert threshold == pytest.approx(kept["threshold"])
    events = read_events(run)
    assert len(scalars(run, "val/ece")) == len(scalars(run, "val/acc"))
    (before,), (after,) = scalars(run, "test/ece_unscaled"), scalars(run, "test/ece")
    assert before[1] != after[1]  # the test was scored with and without the temperature
    assert "test/reliability" in events.Tags()["images"]


def test_a_run_sets_its_threshold_by_the_rule_it_is_given():
    settings = ("--calibrate.target_error", "0.01", "--trainer.max_epochs", "6")
    summary = main([*QUIET, *settings, "--calibrate.rule", "expected"])
    images, labels = DigitsSplits().arrays("val")
    model = DigitsClassifier.load_from_checkpoint(summary.checkpoint, weights_only=True)
    with torch.no_grad():
        logits = model(torch.from_numpy(images))
    stored = read_checkpoint(summary.checkpoint)["callbacks"][CALIBRATION_STATE]
    expected = fit_calibration(logits, torch.from_numpy(labels), 0.01, rule="expected")
    counted = fit_calibration(logits, torch.from_numpy(labels), 0.01, rule="counted")
    assert stored["threshold"] == pytest.approx(expected.threshold, rel=1e-4)
    assert expected.threshold != pytest.approx(counted.threshold, rel=1e-3)


def test_each_checkpoint_is_calibrated_on_its_own_weights():
    # At this learning rate the best epoch (the one tested) is not the last.
    summary = main([*QUIET, "--model.lr", "0.03", "--trainer.max_epochs", "6"])
    best_path, last_path = Path(summary.checkpoint), Path(summary.log_dir) / "checkpoints/last.ckpt"
    assert read_checkpoint(best_path)["epoch"] != read_checkpoint(last_path)["epoch"]
    images, labels = DigitsSplits().arrays("val")

    def refitted(path: Path) -> tuple[float, float]:
        model = DigitsClassifier.load_from_checkpoint(path, weights_only=True)
        with torch.no_grad():
            logits = model(torch.from_numpy(images))
        fitted = fit_calibration(logits, torch.from_numpy(labels))
        return fitted.temperature, fitted.threshold

    def stored(path: Path) -> tuple[float, float]:
        state = read_checkpoint(path)["callbacks"][CALIBRATION_STATE]
        return state["temperature"], state["threshold"]

    # The best checkpoint (the one tested) and last.ckpt, which the tools are often given.
    assert stored(best_path) == pytest.approx(refitted(best_path), rel=1e-4)
    assert stored(last_path) == pytest.approx(refitted(last_path), rel=1e-4)
    assert stored(best_path)[0] != pytest.approx(stored(last_path)[0], rel=1e-3)


def test_the_calibration_error_leaves_out_images_of_no_class():
    """A non-digit's target spreads over the classes: it has no right answer to score."""
    torch.manual_seed(0)
    logits = torch.randn(30, 10) * 3
    targets = F.one_hot(torch.randint(0, 10, (30,)), 10).float()
    targets[::3] = 0.1  # every third image: the uniform distribution
    calibrate = Calibrate()
    calibrate.temperature = 1.5
    batches = SimpleNamespace(num_test_batches=[2])  # the first of two: nothing logged yet
    calibrate.on_test_batch_end(batches, DigitsClassifier(), logits, (None, targets), 0)
    has_class = targets.max(dim=1).values == 1
    expected = multiclass_calibration_error(
        (logits[has_class] / 1.5).softmax(dim=1),
        targets[has_class].argmax(dim=1),
        num_classes=10,
        n_bins=CALIBRATION_BINS,
    )
    assert calibrate.errors["test/ece"].compute().item() == pytest.approx(expected.item())
    unscaled = calibrate.errors["test/ece_unscaled"].compute().item()
    assert unscaled != pytest.approx(expected.item())
