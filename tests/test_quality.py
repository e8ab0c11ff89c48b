"""The pieces of configs/best.yaml: networks by class path, schedules, augmentation."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from digits import DigitsClassifier, DigitsDataModule
from digits.cli import DigitsCLI
from digits.fit import main
from digits.networks import MLP, ConvNet
from digits.people.augment import Shift, shift_images
from digits.people.non_digits import NonDigits
from digits.people.pen_digits import PenDigits
from tests.conftest import QUIET, scalars

BEST = Path(__file__).resolve().parent.parent / "configs" / "best.yaml"


@pytest.mark.parametrize(
    ("args", "network"),
    [([], MLP), (["--config", str(BEST)], ConvNet), (["--model.network", "ConvNet"], ConvNet)],
)
def test_each_network_builds_from_its_config_and_learns(args, network):
    summary = main([*args, *QUIET, "--trainer.max_epochs", "3"])
    model = DigitsClassifier.load_from_checkpoint(summary.checkpoint, weights_only=True)
    assert isinstance(model.network, network)
    losses = [value for _, value in scalars(Path(summary.log_dir), "train/loss")]
    assert losses[-1] < losses[0]


def test_best_config_logs_its_learning_rate_schedule():
    summary = main(["--config", str(BEST), *QUIET, "--trainer.max_epochs", "4"])
    rates = [value for _, value in scalars(Path(summary.log_dir), "lr-Adam")]
    assert len(rates) == 4
    assert rates[1] > rates[0] and rates[3] < rates[1]  # one cycle: up, then down


def test_shift_moves_each_image_by_at_most_the_shift():
    images = torch.zeros(200, 64)
    images[:, 27] = 1.0  # one lit pixel at row 3, column 3
    moved = shift_images(images, 1, torch.Generator().manual_seed(0))
    rows, cols = (moved.reshape(200, 8, 8) == 1).nonzero()[:, 1:].T
    assert len(rows) == 200  # every image keeps its pixel
    assert set(rows.tolist()) == {2, 3, 4} and set(cols.tolist()) == {2, 3, 4}


class Recorder(DigitsClassifier):
    """Remembers every batch each stage saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, list[torch.Tensor]] = {"train": [], "val": [], "test": []}

    def training_step(self, batch, batch_idx):
        self.seen["train"].append(batch[0].clone())
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.seen["val"].append(batch[0].clone())
        return super().validation_step(batch, batch_idx)

    def test_step(self, batch, batch_idx):
        self.seen["test"].append(batch[0].clone())
        return super().test_step(batch, batch_idx)


def test_augmentation_touches_training_batches_only(tmp_path: Path):
    datamodule = DigitsDataModule(transforms=[Shift(1)], scale="unit")
    model = Recorder()
    trainer = L.Trainer(
        max_epochs=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(model, datamodule=datamodule)
    trainer.test(model, datamodule=datamodule)
    assert torch.equal(torch.cat(model.seen["val"]), datamodule.val_set.features)
    assert torch.equal(torch.cat(model.seen["test"]), datamodule.test_set.features)
    trained_on = torch.cat(model.seen["train"])
    original = datamodule.train_set.features
    assert trained_on.shape == original.shape
    # About 1 in 9 offsets is (0, 0): those images arrive unchanged, the rest moved.
    unchanged = torch.cdist(trained_on, original).min(dim=1).values == 0
    assert 0.03 < unchanged.float().mean() < 0.3


def test_augmentation_is_off_by_default_and_written_in_the_config():
    cli = DigitsCLI(run=False, args=[*QUIET])
    assert cli.datamodule.transforms == [] and cli.datamodule.sources == []
    cli = DigitsCLI(run=False, args=["--config", str(BEST), *QUIET])
    assert [type(transform) for transform in cli.datamodule.transforms] == [Shift]
    assert cli.datamodule.transforms[0].pixels == 1 and isinstance(cli.model.network, ConvNet)
    # The page's model learns drawn digits and non-digits, and keeps its last epoch.
    assert [type(source) for source in cli.datamodule.sources] == [PenDigits, NonDigits]
    assert cli.datamodule.hparams.repeats > 1 and cli.model.hparams.eval_sets == ["drawn"]
    assert cli.config_init.checkpoint.monitor is None
    # Its threshold takes the mistakes its calibrated probabilities expect (docs/sure.md).
    assert cli.config_init.calibrate.rule == "expected"
