"""Baselines train and test on exactly the data module's splits."""

from __future__ import annotations

import numpy as np
import pytest

from digits import DigitsDataModule
from digits.tools.baseline import main, run_baselines


class Recorder:
    """A stand-in estimator that remembers what it was trained and scored on."""

    seen: dict[str, np.ndarray]

    def __init__(self) -> None:
        self.seen = {}

    def fit(self, features: np.ndarray, labels: np.ndarray) -> Recorder:
        self.seen.update(train_x=features, train_y=labels)
        return self

    def score(self, features: np.ndarray, labels: np.ndarray) -> float:
        self.seen.update(test_x=features, test_y=labels)
        return 0.5


@pytest.mark.parametrize("scale", ["raw", "standard"])
def test_baselines_see_the_data_modules_train_and_test_splits(scale):
    datamodule = DigitsDataModule(split_seed=3, scale=scale)
    datamodule.setup()
    recorder = Recorder()
    run_baselines(datamodule.splits, {"recorder": lambda seed: recorder})
    seen = recorder.seen
    assert np.array_equal(seen["train_x"], datamodule.train_set.features.numpy())
    assert np.array_equal(seen["train_y"], datamodule.train_set.targets.numpy())
    assert np.array_equal(seen["test_x"], datamodule.test_set.features.numpy())
    assert np.array_equal(seen["test_y"], datamodule.test_set.targets.numpy())


def test_command_prints_a_table_with_each_chosen_model(capsys):
    results = main(["--models", "[knn, svc]", "--data.split_seed", "1"])
    assert [result.model for result in results] == ["knn", "svc"]
    assert all(0.9 < result.test_acc <= 1.0 for result in results)
    output = capsys.readouterr().out
    assert "split_seed 1" in output and "knn" in output and "random_forest" not in output


def test_unknown_model_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--models", "[xgboost]"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_no_model_is_a_one_line_error_rather_than_an_empty_table(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--models", "[]"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --models is empty; name one or more of ['random_forest', 'svc', 'knn', "
        "'logistic_regression']"
    ]


def test_pixels_divided_by_16_read_as_well_as_raw_ones():
    """configs/best.yaml divides by 16; digits.compare trains the baselines on its pixels.

    Dividing every pixel by the same number changes nothing a fair baseline depends on:
    the forest's splits, the neighbours and SVC's kernel (gamma follows the data) read the
    same. Logistic regression's penalty does depend on the scale, so it is left out.
    """
    models = ["random_forest", "svc", "knn"]
    args = ["--models", f"[{', '.join(models)}]", "--data.split_seed", "4"]
    on_raw = {result.model: result.test_acc for result in main(args)}
    on_unit = {result.model: result.test_acc for result in main([*args, "--data.scale", "unit"])}
    assert on_unit == on_raw
    assert min(on_raw.values()) > 0.95
