"""The neighbour test: images unlike every training digit are not sure, however probable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import QUIET, fit_in, scalars

from digits.dataset import DigitsSplits
from digits.reading.checkpoint import read_checkpoint
from digits.reading.familiar import FAMILIARITY_STATE, features_and_logits, neighbour_distances
from digits.reading.trained import load_trained
from digits.training.calibrate import Calibrate
from digits.training.familiar import DeclineUnfamiliar, ordinal
from digits.training.summary import FitSummary

GATED = "--trainer.callbacks+=digits.training.familiar.DeclineUnfamiliar"


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FitSummary]:
    """The folder and summary of a short run of the tutorial's network with the test."""
    folder = tmp_path_factory.mktemp("gated")
    # Each training digit twice an epoch, and non-digits beside them: neither belongs among
    # the digits it keeps.
    more = ("--data.repeats", "2", "--data.sources+=digits.people.non_digits.NonDigits")
    return folder, fit_in(
        folder, GATED, *more, "--data.sources.count", "200", "--trainer.max_epochs", "12"
    )


@pytest.fixture(scope="module")
def gated(gated_run: tuple[Path, FitSummary]) -> Path:
    """That run's best checkpoint."""
    folder, summary = gated_run
    return folder / summary.checkpoint


def test_the_summary_says_how_many_validation_digits_are_unfamiliar(gated_run, gated: Path):
    state = read_checkpoint(gated)["callbacks"][FAMILIARITY_STATE]
    (line,) = [line for line in gated_run[1].lines() if line.startswith("unfamiliar")]
    images, _ = DigitsSplits().arrays("val", scaled=False)
    _, sureness = load_trained(gated).probabilities_and_sureness(images)
    beyond = (sureness == 0).mean()
    assert 0 < beyond <= 0.02  # no more than the share allows
    assert line == (
        f"unfamiliar    farther than {state['cutoff']:.4f} from the 10th nearest of "
        f"{len(state['bank_inputs'])} training digits: {beyond:.1%} of the validation digits, "
        "never sure"
    )


@pytest.mark.parametrize(
    ("number", "words"),
    [(1, "1st"), (2, "2nd"), (3, "3rd"), (10, "10th"), (12, "12th"), (22, "22nd")],
)
def test_ordinals_read_as_english(number: int, words: str):
    assert ordinal(number) == words


def test_a_run_keeps_its_training_digits_once_and_a_cutoff_fitted_on_validation(gated: Path):
    state = read_checkpoint(gated)["callbacks"][FAMILIARITY_STATE]
    splits = DigitsSplits()
    training, _ = splits.arrays("train")
    # Each training digit once, as the network's inputs (float16), whatever the repeats.
    assert len(state["bank_inputs"]) == len(np.unique(training, axis=0))
    kept = {tuple(row) for row in state["bank_inputs"].float().numpy().round(2)}
    assert kept == {
        tuple(row) for row in torch.from_numpy(training).half().float().numpy().round(2)
    }
    # The cut-off keeps all but 2% of the validation digits, measured anew here.
    trained = load_trained(gated)
    images, _ = splits.arrays("val", scaled=False)
    with torch.no_grad():
        inputs = torch.from_numpy(splits.scaling(images))
        features, _ = features_and_logits(trained.network, inputs, trained.network)
    distances = neighbour_distances(features, trained.familiarity.bank, 10)
    # The cut-off is a validation digit's own distance: the nearest that leaves no more
    # than 2% of them beyond it.
    ordered = distances.sort().values.tolist()
    allowed = int(0.02 * len(ordered))
    assert state["cutoff"] == pytest.approx(ordered[len(ordered) - 1 - allowed])
    assert (distances > state["cutoff"]).sum() == allowed > 0
    # last.ckpt keeps its own, fitted on its own weights, and the best's is logged.
    last_path = gated.parent / "last.ckpt"
    last = read_checkpoint(last_path)["callbacks"][FAMILIARITY_STATE]
    assert torch.equal(last["bank_inputs"], state["bank_inputs"])
    assert last["cutoff"] == pytest.approx(refitted_cutoff(last_path, splits), rel=1e-5)
    ((_, logged),) = scalars(gated.parent.parent, "familiar/cutoff")
    assert logged == pytest.approx(state["cutoff"])


def refitted_cutoff(path: Path, splits: DigitsSplits) -> float:
    """The cut-off found anew from a checkpoint's weights and kept training digits."""
    trained = load_trained(path)
    images, _ = splits.arrays("val", scaled=False)
    with torch.no_grad():
        inputs = torch.from_numpy(splits.scaling(images))
        features, _ = features_and_logits(trained.network, inputs, trained.network)
    distances = neighbour_distances(features, trained.familiarity.bank, 10).sort().values
    return float(distances[len(distances) - 1 - int(0.02 * len(distances))])


def test_an_image_unlike_every_training_digit_is_not_sure_however_probable(gated: Path):
    trained = load_trained(gated)
    noise = np.random.default_rng(0).uniform(0, 16, (2000, 64)).astype(np.float32)
    probabilities, sureness = trained.probabilities_and_sureness(noise)
    probable = probabilities.max(axis=1) >= trained.threshold
    unfamiliar = probable & (sureness == 0)
    assert unfamiliar.sum() >= 5  # noise the softmax is sure of, which the neighbours decline
    images = noise[unfamiliar]
    _, readings = trained.readings(images)
    assert not any(reading.sure for reading in readings)
    _, at_zero = trained.readings(images, threshold=0.0)
    assert all(reading.sure for reading in at_zero)  # 0 still makes every reading sure
    ungated = dataclasses.replace(trained, familiarity=None)
    assert all(reading.sure for reading in ungated.readings(images)[1])


def test_lightning_predict_leaves_unfamiliar_readings_not_sure():
    calibrate = Calibrate()
    outputs = {
        "logits": torch.tensor([[9.0, 0.0], [9.0, 0.0]]),
        "familiar": torch.tensor([False, True]),
    }
    calibrate.on_predict_batch_end(None, None, outputs, None, 0)
    assert outputs["sure"].tolist() == [False, True]


def test_a_share_or_neighbour_out_of_range_is_one_line_before_anything_is_written(capsys):
    from digits.fit import main

    for flag, value in (("share", "1.5"), ("neighbour", "0")):
        with pytest.raises(SystemExit) as stop:
            main([*QUIET, GATED, f"--trainer.callbacks.{flag}", value])
        assert stop.value.code == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert f"DeclineUnfamiliar.{flag}" in line
    assert not Path("lightning_logs").exists()


def test_the_export_says_it_leaves_the_neighbours_out(gated: Path, capsys):
    from digits.reading.export import main

    main(["--ckpt_path", str(gated), "--format", "torchscript", "--output", "digits.pt"])
    assert "the export does not carry them" in capsys.readouterr().out


@pytest.mark.slow  # reads every drawn test digit and 1,500 non-digits twice
def test_digits_drawn_counts_an_unfamiliar_drawing_as_not_sure(gated: Path, tmp_path: Path):
    from digits.people.drawn import choose_drawings, score

    trained = load_trained(gated)
    drawings = choose_drawings(trained, "test", None)
    gated_score = score(trained, drawings, tmp_path / "gated")
    ungated = dataclasses.replace(trained, familiarity=None)
    plain_score = score(ungated, drawings, tmp_path / "plain")
    # Declining more non-digits, and no drawing sure that the probability alone declines.
    assert gated_score.non_digits_not_sure > plain_score.non_digits_not_sure
    assert gated_score.coverage < plain_score.coverage
    assert gated_score.accuracy == plain_score.accuracy  # the reading itself never changes
    assert "and like a training digit" in "\n".join(gated_score.lines())
    assert "and like a training digit" not in "\n".join(plain_score.lines())


@pytest.mark.parametrize("calibrate_first", [False, True])
def test_lightning_predict_and_the_tools_agree_on_what_is_sure(gated: Path, calibrate_first: bool):
    from lightning import Trainer
    from torch.utils.data import DataLoader, TensorDataset

    from digits import DigitsClassifier
    from digits.reading.checkpoint import CALIBRATION_STATE

    trained = load_trained(gated)
    # The validation digits, two of them beyond the cut-off, and noise, most of it beyond.
    digits, _ = DigitsSplits().arrays("val", scaled=False)
    noise = np.random.default_rng(1).uniform(0, 16, (600, 64)).astype(np.float32)
    noise = np.concatenate([digits, noise])
    kept = read_checkpoint(gated)["callbacks"]
    # Given another neighbour for its next fit: reading, it takes the checkpoint's (10).
    decline, calibrate = DeclineUnfamiliar(neighbour=3), Calibrate()
    decline.load_state_dict(kept[FAMILIARITY_STATE])
    calibrate.load_state_dict(kept[CALIBRATION_STATE])
    model = DigitsClassifier.load_from_checkpoint(gated, map_location="cpu")
    callbacks = [calibrate, decline] if calibrate_first else [decline, calibrate]
    trainer = Trainer(callbacks=callbacks, logger=False, enable_progress_bar=False)
    inputs = torch.from_numpy(trained.scaling(noise))
    batches = trainer.predict(model, DataLoader(TensorDataset(inputs), batch_size=256))
    sure = torch.cat([batch["sure"] for batch in batches]).tolist()
    assert sure == [reading.sure for reading in trained.readings(noise)[1]]
    familiar = torch.cat([batch["familiar"] for batch in batches])
    _, sureness = trained.probabilities_and_sureness(noise)
    assert familiar.tolist() == (sureness > 0).tolist()
    assert not familiar[: len(digits)].all()
    ungated = dataclasses.replace(trained, familiarity=None)
    probable = [reading.sure for reading in ungated.readings(noise)[1]]
    assert sum(sure) < sum(probable)  # the neighbours declined some the probability would not
    with torch.no_grad():
        model(inputs[:4])
    assert not decline.seen  # predicting over, the model no longer hands it its features


def test_digits_predict_applies_a_checkpoints_test_without_its_config(gated: Path, capsys):
    from digits.__main__ import main as digits_main

    cli = digits_main(["predict", "--ckpt_path", str(gated), *QUIET])
    (decline,) = [c for c in cli.trainer.callbacks if isinstance(c, DeclineUnfamiliar)]
    kept = read_checkpoint(gated)["callbacks"][FAMILIARITY_STATE]
    assert decline.state_dict()["cutoff"] == kept["cutoff"]
    trained = load_trained(gated)
    images, _ = DigitsSplits().arrays("test", scaled=False)
    sure = sum(reading.sure for reading in trained.readings(images)[1])
    assert f"predict: read {len(images)} images, {sure} of them sure" in capsys.readouterr().out


def probable_but_unfamiliar(gated: Path) -> np.ndarray:
    """Noise that the softmax reads as a digit at the threshold, and the test declines."""
    trained = load_trained(gated)
    noise = np.random.default_rng(2).uniform(0, 16, (2000, 64)).astype(np.float32)
    probabilities, sureness = trained.probabilities_and_sureness(noise)
    return noise[(probabilities.max(axis=1) >= trained.threshold) & (sureness == 0)]


def test_digits_predict_says_why_an_unfamiliar_image_is_not_sure(gated: Path, capsys):
    from digits.reading.predict import main as predict_main

    np.save("noise.npy", probable_but_unfamiliar(gated)[:3])
    predict_main(["--ckpt_path", str(gated), "noise.npy"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert all("; not sure, unlike the digits it learned: " in line for line in lines)


@pytest.mark.slow  # a server process and Chromium: CI and the mutants run it
def test_the_server_and_the_page_say_why_an_unfamiliar_drawing_is_not_sure(gated: Path, browser):
    from selenium.webdriver.common.by import By

    from tests.test_serve import Server

    pixels = probable_but_unfamiliar(gated)[0]
    server = Server(gated)
    try:
        status, answer = server.predict({"pixels": pixels.tolist()})
        assert status == 200 and answer["unfamiliar"] is True and answer["sure"] is False
        status, familiar = server.predict({"pixels": DigitsSplits().arrays("val")[0][0].tolist()})
        assert status == 200 and familiar["unfamiliar"] is False
        # The page shows the server's own answer as it shows every answer.
        browser.get(f"http://127.0.0.1:{server.port}/")
        browser.execute_script("render(arguments[0])", answer)
        shown = browser.find_element(By.ID, "probability").text
        probability = f"{answer['probability']:.2f}"
        assert shown == f"not sure (probability {probability})\nunlike the digits it learned"
    finally:
        server.stop()
