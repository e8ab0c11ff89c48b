"""The core is the tutorial's three steps; every other feature is composed in from outside.

One test trains the core alone, with Lightning's own Trainer and nothing of the
project's around it; another trains with every feature on at once, each named in the
command line by class path, and finds each one's traces in what the run wrote.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from digits.data import DigitsDataModule
from digits.fit import main
from digits.model import DigitsClassifier
from digits.people.pen_digits import PenDigits
from digits.reading.checkpoint import CALIBRATION_STATE
from digits.reading.sure import fit_calibration
from tests.conftest import QUIET, read_events

CORE_METRICS = {"train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best"}


def test_the_core_trains_alone_with_lightnings_own_trainer(tmp_path: Path):
    L.seed_everything(0, verbose=False)
    data = DigitsDataModule()
    model = DigitsClassifier(num_features=data.num_features, num_classes=data.num_classes)
    trainer = L.Trainer(
        max_epochs=20,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    assert set(trainer.callback_metrics) == CORE_METRICS
    (tested,) = trainer.test(model, datamodule=data, verbose=False)
    assert set(tested) == {"test/loss", "test/acc"}
    assert tested["test/acc"] > 0.9  # the tutorial's network learned the digits


@pytest.mark.slow
def test_every_feature_composed_in_at_once_leaves_its_traces(tmp_path: Path):
    features = [
        *("--data.sources+=digits.people.pen_digits.PenDigits",),
        *("--data.sources+=digits.people.non_digits.NonDigits", "--data.sources.count", "100"),
        *("--data.transforms+=digits.people.augment.Handwriting",),
        *("--data.transforms+=digits.people.augment.Shift",),
        *("--trainer.max_epochs", "2", "--data.scale", "unit"),
    ]
    summary = main([*QUIET, *features])
    run = Path(summary.log_dir)
    logged = set(read_events(run).Tags()["scalars"])
    assert CORE_METRICS | {"test/loss", "test/acc"} <= logged
    # The pen digits' own set, scored apart; calibration on every set.
    assert {"val/drawn_acc", "test/drawn_acc", "val/ece", "val/drawn_ece"} <= logged
    assert {"test/ece_unscaled", "test/drawn_ece", "calibration/temperature"} <= logged
    assert "drawn" in summary.further_tests and summary.calibration is not None
    images = set(read_events(run).Tags()["images"])
    assert {"train/samples", "test/confusion_matrix", "test/reliability"} <= images
    saved = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert [part["class_path"].rpartition(".")[2] for part in saved["sources"]] == [
        "PenDigits",
        "NonDigits",
    ]
    assert [part["class_path"].rpartition(".")[2] for part in saved["transforms"]] == [
        "Handwriting",
        "Shift",
    ]
    checkpoint = torch.load(summary.checkpoint, weights_only=True)
    assert checkpoint["hyper_parameters"]["eval_sets"] == ["drawn"]
    # Calibrated on the validation images as they are: the transforms change training only.
    model = DigitsClassifier.load_from_checkpoint(summary.checkpoint, map_location="cpu").eval()
    data = DigitsDataModule(scale="unit", sources=[PenDigits()])
    data.setup("validate")
    sets = [data.val_set, data.eval_set("drawn", "val")]
    with torch.no_grad():
        logits = torch.cat([model(dataset.features) for dataset in sets])
    numbers = torch.cat([torch.full((len(dataset),), n) for n, dataset in enumerate(sets)])
    targets = torch.cat([dataset.targets for dataset in sets])
    fitted = fit_calibration(logits, targets, sets=numbers)
    kept = checkpoint["callbacks"][CALIBRATION_STATE]
    assert (kept["temperature"], kept["threshold"]) == pytest.approx(
        (fitted.temperature, fitted.threshold), rel=1e-5
    )


def test_the_models_file_names_no_feature_beyond_the_tutorial():
    """A learner reading step 2 meets only step 2."""
    import digits.model

    text = Path(digits.model.__file__).read_text().lower()
    for word in ("temperature", "threshold", "outlier", "drawn", "calibrat", "pen digit"):
        assert word not in text, word
