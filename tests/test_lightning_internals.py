"""Pins what digits/training/lightning_internals.py relies on in Lightning, TensorBoard and torch.

Each test fails if the library changes the behaviour the adapter assumes, so that an
upgrade shows where to look instead of changing a run in a subtle way.
"""

from __future__ import annotations

import inspect
import signal
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from tensorboard.plugins.hparams import plugin_data_pb2
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from digits.training.lightning_internals import (
    epoch_ended,
    evaluation_sampler,
    scalar_events,
    training_batches_before,
    write_summaries,
)
from tests.conftest import read_events


def test_lightning_cli_reads_checkpoint_hyperparameters_in_parse_ckpt_path_after_parsing():
    source = inspect.getsource(LightningCLI.__init__)
    assert source.index("self.parse_arguments(") < source.index("self._parse_ckpt_path()")
    assert "hyper_parameters" in inspect.getsource(LightningCLI._parse_ckpt_path)


def test_the_evaluation_sampler_gives_every_image_to_exactly_one_process():
    class Trainer:  # what the sampler reads of a trainer
        world_size, global_rank = 2, 0

    dataset = TensorDataset(torch.arange(135))
    shares = []
    for rank in (0, 1):
        Trainer.global_rank = rank
        shares.append(list(evaluation_sampler(dataset, Trainer())))
    assert sorted(shares[0] + shares[1]) == list(range(135))
    assert (len(shares[0]), len(shares[1])) == (68, 67)


def test_model_checkpoint_has_the_top_k_check_the_tie_rule_overrides():
    parameters = inspect.signature(ModelCheckpoint.check_monitor_top_k).parameters
    assert list(parameters) == ["self", "trainer", "current"]
    checkpoint = ModelCheckpoint(monitor="val/acc", mode="max")
    assert checkpoint.best_k_models == {} and checkpoint.kth_best_model_path == ""
    # The best is chosen by max over the kept files in the order they were saved (the
    # first of equal scores), assigned to the attribute the override reads back.
    chooses = inspect.getsource(ModelCheckpoint._update_best_and_save)
    assert "self.best_k_models[filepath] = current" in chooses
    assert "self.best_model_path = _op(self.best_k_models, key=self.best_k_models.get)" in chooses


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Observer(L.Callback):
    """Records epoch_ended where a checkpoint is saved and between batches; the SIGTERM handler."""

    def __init__(self) -> None:
        self.at_save: list[bool] = []
        self.between_batches: list[bool] = []
        self.handler_at_train_start = None

    def on_train_start(self, trainer, pl_module):
        self.handler_at_train_start = signal.getsignal(signal.SIGTERM)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.between_batches.append(epoch_ended(trainer))

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        self.at_save.append(epoch_ended(trainer))


def test_an_epoch_end_checkpoint_is_told_from_a_mid_epoch_one_and_lightning_owns_sigterm(
    tmp_path: Path,
):
    observer = Observer()
    trainer = L.Trainer(
        max_epochs=2,
        callbacks=[observer],
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
    before = signal.getsignal(signal.SIGTERM)
    trainer.fit(Tiny(), loader)
    assert observer.at_save == [True, True]  # the end of each of the two epochs
    assert observer.between_batches == [False] * 4
    # Lightning installs its own SIGTERM handler before on_train_start: the interrupt
    # callback replaces it from there (and puts it back).
    assert observer.handler_at_train_start not in (before, signal.SIG_DFL, None)


class CountsBatches(Tiny):
    """Notes, as each training batch is moved to the device, the batches before it."""

    def __init__(self) -> None:
        super().__init__()
        self.counted: list[tuple[int, int]] = []

    def on_after_batch_transfer(self, batch, dataloader_idx):
        if self.trainer.training:
            self.counted.append((training_batches_before(self.trainer), self.trainer.global_step))
        return batch


@pytest.mark.parametrize("accumulate", [1, 2])
def test_the_batches_before_the_one_moved_are_counted_across_epochs_and_a_resume(
    tmp_path: Path, accumulate: int
):
    loader = DataLoader(TensorDataset(torch.randn(16, 2)), batch_size=4)  # 4 batches an epoch

    def fit(epochs: int, ckpt_path: Path | None = None) -> CountsBatches:
        model = CountsBatches()
        trainer = L.Trainer(
            max_epochs=epochs,
            accumulate_grad_batches=accumulate,
            default_root_dir=tmp_path,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(model, loader, ckpt_path=ckpt_path)
        return model

    first = fit(2)
    assert [before for before, _ in first.counted] == list(range(8))
    assert [step for _, step in first.counted] == [n // accumulate for n in range(8)]
    checkpoint = next((tmp_path / "checkpoints").glob("*.ckpt"))
    assert [before for before, _ in fit(3, checkpoint).counted] == list(range(8, 12))


def test_lightning_ignores_ctrl_c_before_the_callbacks_save_an_interrupted_run():
    from lightning.pytorch.trainer import call

    handling = inspect.getsource(call._call_and_handle_interrupt)
    ignored = handling.index("signal.signal(signal.SIGINT, signal.SIG_IGN)")
    assert ignored < handling.index("_interrupt(trainer, exception)")
    assert "on_exception" in inspect.getsource(call._interrupt)


def test_scalar_events_reads_every_point_of_every_tag(tmp_path: Path):
    writer = SummaryWriter(tmp_path)
    for step in range(3):
        writer.add_scalar("val/acc", step / 10, step)
    writer.add_scalar("train/loss", 2.0, 7)
    writer.close()
    events = scalar_events(tmp_path)
    assert [(event.step, event.value) for event in events["val/acc"]] == [
        (0, 0.0),
        (1, pytest.approx(0.1)),
        (2, pytest.approx(0.2)),
    ]
    assert [event.step for event in events["train/loss"]] == [7]


def test_summaries_go_into_the_writers_own_event_file(tmp_path: Path):
    writer = SummaryWriter(tmp_path)
    write_summaries(writer, hparams({"lr": 0.5, "network": "MLP"}, {"val/acc_best": 0.0}))
    writer.close()
    assert [path.parent for path in tmp_path.rglob("events.out.tfevents.*")] == [tmp_path]
    content = read_events(tmp_path).PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert session.session_start_info.hparams["lr"].number_value == 0.5
    assert session.session_start_info.hparams["network"].string_value == "MLP"
