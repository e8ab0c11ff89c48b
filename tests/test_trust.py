"""Reproducible runs, resume after a crash, no lost work, clear errors, DDP.

Where a user would type a command (kill it, resume it, run two processes), the test runs
the real command as a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.distributed as dist
import yaml
from lightning.pytorch.utilities.exceptions import SIGTERMException
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from digits.__main__ import main as digits_main
from digits.bench.serve import free_port
from digits.cli import DigitsCLI
from digits.fit import main
from digits.reading.checkpoint import read_checkpoint
from digits.reading.trained import load_trained
from digits.training.checkpoints import SafeCheckpointIO
from digits.training.folders import continues_its_run
from digits.training.interrupt import InterruptCheckpoint
from tests.conftest import (
    QUIET,
    accuracy_on_the_test_split,
    children,
    cmdline,
    ctrl_c_as_in_a_terminal,
    ended_within,
    read_events,
    scalars,
    split_for_testing,
)

TAGS = ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/loss", "test/acc")
FIT = [sys.executable, "-m", "digits.fit", *QUIET]
ONLY_TIME = ["--trainer.max_time", "00:00:00:05"]  # a run bounded by time alone


def curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    return {tag: scalars(run, tag) for tag in TAGS}


LAST_CHECKPOINT_STATE = (
    "ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, "
    "'every_n_epochs': 1, 'train_time_interval': None}"
)


def run_dir(tmp_path: Path, version: int) -> Path:
    return tmp_path / "lightning_logs" / "digits" / f"version_{version}"


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the run ended before the file appeared"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


# 1. Reproducible -----------------------------------------------------------------------


def test_same_seeds_give_identical_metrics_bit_for_bit(tmp_path: Path):
    first = main([*QUIET, "--trainer.max_epochs", "3"])
    second = main([*QUIET, "--trainer.max_epochs", "3"])
    assert curves(Path(first.log_dir)) == curves(Path(second.log_dir))


def built(*args: str) -> DigitsCLI:
    cli = DigitsCLI(run=False, args=[*QUIET, *args])
    cli.datamodule.setup()
    return cli


def first_epoch_order(cli: DigitsCLI) -> torch.Tensor:
    return next(iter(cli.datamodule.train_dataloader()))[1]


def test_seed_changes_initialisation_and_shuffle_but_not_the_split():
    # The order is read from the seed when training starts: one run at a time.
    base = built()
    base_order = first_epoch_order(base)
    reseeded = built("--seed_everything", "1")
    assert not torch.equal(base.model.network[0].weight, reseeded.model.network[0].weight)
    assert not torch.equal(base_order, first_epoch_order(reseeded))
    assert torch.equal(base.datamodule.test_set.features, reseeded.datamodule.test_set.features)


def test_split_seed_changes_the_split_and_not_the_initialisation():
    base, resplit = built(), built("--data.split_seed", "1")
    assert torch.equal(base.model.network[0].weight, resplit.model.network[0].weight)
    assert not torch.equal(base.datamodule.test_set.features, resplit.datamodule.test_set.features)


# 2. Resume with the same result ----------------------------------------------------------


def resume_as_the_readme_says(run: Path) -> None:
    resume = ["--config", str(run / "config.yaml")]
    resume += ["--ckpt_path", str(run / "checkpoints" / "last.ckpt")]
    subprocess.run([*FIT, *resume], check=True, capture_output=True, timeout=180)


@pytest.mark.slow
def test_run_killed_and_resumed_ends_as_an_uninterrupted_run(tmp_path: Path):
    epochs = ["--trainer.max_epochs", "25"]
    uninterrupted = Path(main([*QUIET, *epochs]).log_dir)  # in this process: the same run

    killed = subprocess.Popen([*FIT, *epochs], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = run_dir(tmp_path, 1)
    wait_for(run / "checkpoints" / "last.ckpt", killed)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL
    stopped_after = read_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"]
    assert stopped_after < 24, "the kill came too late to test a resume"

    resume_as_the_readme_says(run)

    resumed, expected = curves(run), curves(uninterrupted)
    assert resumed == expected  # every epoch once, same values, same final test
    steps = [step for step, _ in resumed["val/acc"]]
    assert steps == sorted(set(steps)) and len(steps) == 25
    assert (run / "config.yaml").is_file() and (run / "config.resume-1.yaml").is_file()
    # What a run writes once (sample inputs, the HPARAMS declaration) is not repeated.
    assert len(read_events(run).Images("train/samples")) == 1
    declared = [
        value.tag
        for file in run.glob("events.out.tfevents.*")
        for event in EventFileLoader(str(file)).Load()
        for value in event.summary.value
    ]
    assert declared.count("_hparams_/session_start_info") == 1
    assert not run_dir(tmp_path, 2).exists()


# Saves checkpoints as the project does, then dies the instant last.ckpt of the epoch in
# argv[1] is in place: after that epoch's checkpoints, before Lightning logs its train/*
# metrics.
KILLED_AFTER_LAST_CHECKPOINT = """
import os, signal, sys
from digits.fit import main
from digits.training.checkpoints import SafeCheckpointIO

save = SafeCheckpointIO.save_checkpoint
last_epoch = int(sys.argv.pop(1))

def save_then_die(self, checkpoint, path, storage_options=None):
    save(self, checkpoint, path, storage_options)
    if str(path).endswith("last.ckpt") and checkpoint["epoch"] == last_epoch:
        os.kill(os.getpid(), signal.SIGKILL)

SafeCheckpointIO.save_checkpoint = save_then_die
main(sys.argv[1:])
"""


def killed_after_epoch(epoch: int, *args: str) -> None:
    """Runs digits.fit as a command that is killed with SIGKILL right after ``epoch``."""
    code = KILLED_AFTER_LAST_CHECKPOINT
    killed = subprocess.run(
        [sys.executable, "-c", code, str(epoch), *QUIET, *args], capture_output=True, timeout=180
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]


@pytest.mark.slow
def test_a_kill_right_after_the_checkpoint_past_the_best_epoch_loses_nothing(tmp_path: Path):
    """lr 0.03: val/acc peaks at epoch 11 (0.9852), then falls and rises again.

    Killed the instant epoch 12's last.ckpt is written, before Lightning logs that epoch's
    train/* values: the checkpoint carries them, and the best val/acc so far.
    """
    args = ["--model.lr", "0.03", "--trainer.max_epochs", "15"]
    expected = main([*QUIET, *args])
    uninterrupted = Path(expected.log_dir)
    peak = max(value for _, value in scalars(uninterrupted, "val/acc"))
    peak_epoch = [value for _, value in scalars(uninterrupted, "val/acc")].index(peak)
    assert peak_epoch < 12 and scalars(uninterrupted, "val/acc")[12][1] < peak  # a fall after

    killed_after_epoch(12, *args)
    run = run_dir(tmp_path, 1)
    resume = ["--config", str(run / "config.yaml")]
    resumed = main([*QUIET, *resume, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])

    assert curves(run) == curves(uninterrupted)  # val/acc_best and so HPARAMS' value too
    assert [value for _, value in scalars(run, "val/acc_best")][-1] == peak
    assert Path(resumed.checkpoint).name == Path(expected.checkpoint).name
    assert resumed.best_score == expected.best_score == pytest.approx(peak)
    assert resumed.test_acc == expected.test_acc


class Crash(Exception):
    """A crash in the middle of a run, right after an epoch's checkpoints were written."""


@pytest.mark.slow
def test_shifts_augmentation_drawn_digits_and_one_cycle_resume_as_if_never_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    args = [*QUIET, "--model.lr_schedule", "onecycle", "--model.lr", "0.01"]
    args += [
        "--data.transforms+=digits.people.augment.Handwriting",
        "--data.transforms.strength",
        "1.0",
    ]
    args += [
        "--data.transforms+=digits.people.augment.Shift",
        "--data.sources+=digits.people.pen_digits.PenDigits",
    ]
    args += ["--trainer.max_epochs", "6", "--trainer.callbacks+=LearningRateMonitor"]
    uninterrupted = Path(main(args).log_dir)

    save = SafeCheckpointIO.save_checkpoint

    def save_then_crash(self, checkpoint, path, storage_options=None):
        save(self, checkpoint, path, storage_options)
        if str(path).endswith("last.ckpt") and checkpoint["epoch"] == 2:
            raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(SafeCheckpointIO, "save_checkpoint", save_then_crash)
        with pytest.raises(Crash):
            main(args)
    run = run_dir(tmp_path, 1)
    resume_as_the_readme_says(run)
    assert curves(run) == curves(uninterrupted)
    for tag in ("lr-Adam", "val/drawn_acc", "val/drawn_loss", "test/drawn_acc"):
        assert scalars(run, tag) == scalars(uninterrupted, tag)
    # The run was stopped after all: the crash left epochs 3 to 5 to the resumed run.
    assert read_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"] == 5
    assert (run / "config.resume-1.yaml").is_file()


# Resuming from the middle of an epoch is not exact, and Lightning says so.
@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before")
@pytest.mark.parametrize(
    ("sent", "code", "name"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_interrupt_saves_a_checkpoint_and_says_how_to_resume(tmp_path: Path, sent, code, name):
    process = subprocess.Popen(
        [*FIT, "--trainer.max_epochs", "1000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    run = run_dir(tmp_path, 0)
    wait_for(run / "checkpoints" / "last.ckpt", process)
    process.send_signal(sent)
    stderr = ended_within(process, 120)
    assert process.returncode == code
    assert "Traceback" not in stderr, stderr[-3000:]
    assert f"Stopped by {name}" in stderr
    assert read_checkpoint(run / "checkpoints" / "interrupted.ckpt")["state_dict"]
    command = stderr.strip().splitlines()[-1].split()
    assert command[:3] == ["python", "-m", "digits.fit"]
    assert command[-1] == str(Path("lightning_logs/digits/version_0/checkpoints/last.ckpt"))
    last, interrupted = (
        read_checkpoint(run / "checkpoints" / name) for name in ("last.ckpt", "interrupted.ckpt")
    )
    # The interrupted state is at least as far as the last complete epoch, often further.
    assert (
        interrupted["epoch"] >= last["epoch"] and interrupted["global_step"] >= last["global_step"]
    )
    assert f"Stopped by {name} in epoch {interrupted['epoch']};" in stderr

    # It resumes too, in the same folder, each epoch logged once.
    epochs = interrupted["epoch"] + 3
    from_interrupted = ["--ckpt_path", str(run / "checkpoints/interrupted.ckpt")]
    resumed = main(
        [*QUIET, "--config", command[4], *from_interrupted, "--trainer.max_epochs", str(epochs)]
    )
    assert Path(resumed.log_dir) == Path("lightning_logs/digits/version_0")
    steps = [step for step, _ in scalars(run, "val/acc")]
    assert len(steps) == epochs and steps == sorted(set(steps))


class CtrlCTwice(L.Callback):
    """Ctrl-C in epoch 1, then Ctrl-C again while interrupted.ckpt is being written."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == 2:
            os.kill(os.getpid(), signal.SIGINT)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if trainer.interrupted:
            os.kill(os.getpid(), signal.SIGINT)


def test_a_second_ctrl_c_while_the_interrupted_state_is_saved_does_not_stop_the_save(capfd):
    """Lightning ignores Ctrl-C while it shuts down; the callback must leave it so."""
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        main([*QUIET, "--trainer.callbacks+=tests.test_trust.CtrlCTwice"])
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C broke off the save with a traceback")
    except SystemExit as stopped:
        assert stopped.code == 130
    else:
        pytest.fail("the run was not stopped")
    finally:
        signal.signal(signal.SIGINT, handler)
    checkpoints = run_dir(Path.cwd(), 0) / "checkpoints"
    assert read_checkpoint(checkpoints / "interrupted.ckpt")["epoch"] == 1
    assert "Stopped by Ctrl-C in epoch 1;" in capfd.readouterr().err


class SigtermInEpochOne(L.Callback):
    """SIGTERM during epoch 1, whose only training batch is also its last."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == 1:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_signal_stops_a_run_whose_epochs_are_one_batch_at_the_next_epoch(capfd):
    """The stop was checked only between two batches of one epoch: with one batch an epoch
    (a large batch size), a signal was acted on after the last epoch, where a scheduler
    kills a job that does not stop. It stops as the next epoch starts, whose state is
    last.ckpt's: resumed, every epoch is trained and validated once."""
    one_batch = ["--data.batch_size", "2048", "--trainer.max_epochs", "30"]
    stopping = ["--trainer.callbacks+=tests.test_trust.SigtermInEpochOne"]
    with pytest.raises(SystemExit) as stopped:
        main([*QUIET, *one_batch, *stopping])
    assert stopped.value.code == 143
    run = run_dir(Path.cwd(), 0)
    assert read_checkpoint(run / "checkpoints/last.ckpt")["epoch"] == 1
    assert not (run / "checkpoints/interrupted.ckpt").exists()
    printed = capfd.readouterr().err.strip().splitlines()
    assert "Stopped by SIGTERM as epoch 2 started;" in printed[-3]
    command = printed[-1].split()
    assert command[-1] == str(Path("lightning_logs/digits/version_0/checkpoints/last.ckpt"))
    config = yaml.safe_load(Path(command[4]).read_text())
    config["trainer"]["callbacks"] = None  # (the signal once is enough)
    Path("resume.yaml").write_text(yaml.safe_dump(config))
    main([*QUIET, "--config", "resume.yaml", *command[5:]])
    steps = [step for step, _ in scalars(run, "val/acc")]
    assert len(steps) == 30 and steps == sorted(set(steps))


def stopped_by_ctrl_c(args: list[str]) -> int:
    """``main(args)`` with Ctrl-C raising KeyboardInterrupt, as in a terminal, whatever the
    test run inherited; the exit code it ends with."""
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(SystemExit) as stopped:
            main(args)
    finally:
        signal.signal(signal.SIGINT, handler)
    return stopped.value.code


def resume_command_of_a_resumed_run(
    capfd, epochs: int, then: int, stopper: str
) -> tuple[Path, list[str]]:
    """A run of ``epochs``, resumed for ``then`` in all and stopped by Ctrl-C from the
    callback ``stopper`` of this module: the run's folder and the command it printed."""
    main([*QUIET, "--trainer.max_epochs", str(epochs)])
    run = run_dir(Path.cwd(), 0)
    longer = ["--config", str(run / "config.yaml"), "--trainer.max_epochs", str(then)]
    stopping = [f"--trainer.callbacks+=tests.test_trust.{stopper}"]
    from_last = ["--ckpt_path", str(run / "checkpoints/last.ckpt")]
    assert stopped_by_ctrl_c([*QUIET, *longer, *stopping, *from_last]) == 130
    command = capfd.readouterr().err.strip().splitlines()[-1].split()
    assert command[:4] == ["python", "-m", "digits.fit", "--config"]
    return run, command


class CtrlCOnceInEpochFive(L.Callback):
    """Ctrl-C in epoch 5, once in the process (not again in the run it is resumed by)."""

    sent = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == 5 and not CtrlCOnceInEpochFive.sent:
            CtrlCOnceInEpochFive.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def test_a_resumed_run_stopped_again_says_to_resume_with_its_own_settings(capfd):
    """A run resumed for more epochs keeps its settings in ``config.resume-1.yaml``; the
    command printed when it stops named ``config.yaml``, whose 3 epochs would have ended
    the run at once, and tested it as if it were finished."""
    run, command = resume_command_of_a_resumed_run(capfd, 3, 8, "CtrlCOnceInEpochFive")
    assert Path(command[4]).resolve() == (run / "config.resume-1.yaml").resolve()
    main([*QUIET, *command[3:]])
    assert read_checkpoint(run / "checkpoints/last.ckpt")["epoch"] == 7


def test_a_finished_run_trained_on_reads_its_event_files_whole_and_quietly(caplog):
    """Resumed in its folder, a run reads its own event files for the epoch-end values a
    kill may have kept from them. TensorBoard's reader, by default, takes a new file's
    first step after the earlier run's test as a restart: it dropped what came after
    from what it read, and said so on stderr ("Detected out of order event.step")."""
    first = main([*QUIET, "--trainer.max_epochs", "2"])
    run = Path(first.log_dir)
    resume = [
        "--config",
        str(run / "config.yaml"),
        "--ckpt_path",
        str(run / "checkpoints/last.ckpt"),
    ]
    caplog.clear()
    main([*QUIET, *resume, "--trainer.max_epochs", "3"])
    assert not [record for record in caplog.records if "out of order" in record.getMessage()]
    losses = curves(run)["train/loss"]
    assert [step for step, _ in losses] == sorted({step for step, _ in losses})
    assert len(losses) == 3


def test_a_checkpoint_callback_the_user_adds_keeps_its_files_and_takes_over_nothing(
    tmp_path: Path,
):
    """Lightning calls the first checkpoint callback in its list the run's; a user's added
    in ``--trainer.callbacks`` came first, so the run tested, calibrated and summarised
    the user's snapshots instead of its best epoch."""
    snapshots = ["--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.dirpath", "snap"]
    every_other = [
        "--trainer.callbacks.every_n_epochs",
        "2",
        "--trainer.callbacks.save_top_k",
        "-1",
    ]
    summary = main([*QUIET, *snapshots, *every_other, "--trainer.max_epochs", "4"])
    assert summary.monitor == "val/acc"
    assert (
        Path(summary.checkpoint).parent.resolve()
        == (run_dir(tmp_path, 0) / "checkpoints").resolve()
    )
    assert Path(summary.checkpoint).name.startswith("epoch00")
    assert sorted(path.name for path in (tmp_path / "snap").iterdir()) == [
        "epoch=1-step=20.ckpt",
        "epoch=3-step=40.ckpt",
    ]


class CtrlCOnceAfterEpochOnesFirstValidation(L.Callback):
    """Ctrl-C in epoch 1 after its validation halfway, once in the process."""

    sent = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        halfway = trainer.num_training_batches // 2
        if trainer.current_epoch == 1 and batch_idx == halfway + 1 and not type(self).sent:
            type(self).sent = True
            os.kill(os.getpid(), signal.SIGINT)


def test_a_run_validated_within_its_epochs_is_told_to_resume_in_its_own_folder(capfd):
    """Validated twice an epoch, the best checkpoint can be written after last.ckpt (in
    the epoch the run was stopped in): resumed from last.ckpt, as the command said, it
    went to a new folder. The command names interrupted.ckpt then, which continues."""
    twice = ["--trainer.val_check_interval", "0.5", "--checkpoint.monitor", "val/loss"]
    stopping = ["--trainer.callbacks+=tests.test_trust.CtrlCOnceAfterEpochOnesFirstValidation"]
    assert stopped_by_ctrl_c([*QUIET, *twice, *stopping, "--trainer.max_epochs", "3"]) == 130
    run = run_dir(Path.cwd(), 0)
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    last = read_checkpoint(run / "checkpoints/last.ckpt")
    assert read_checkpoint(best)["global_step"] > last["global_step"]
    command = capfd.readouterr().err.strip().splitlines()[-1].split()
    assert command[-1] == str(Path("lightning_logs/digits/version_0/checkpoints/interrupted.ckpt"))
    resumed = main([*QUIET, *command[3:]])
    assert Path(resumed.log_dir) == Path("lightning_logs/digits/version_0")
    assert not run_dir(Path.cwd(), 1).exists()
    assert read_checkpoint(run / "checkpoints/last.ckpt")["epoch"] == 2
    assert len(list((run / "checkpoints").glob("epoch*.ckpt"))) == 1  # no best left behind


class CtrlCOnceInTheTest(L.Callback):
    """Ctrl-C while the finished run is tested, once in the process."""

    sent = False

    def on_test_batch_end(self, *args, **kwargs) -> None:
        if not type(self).sent:
            type(self).sent = True
            os.kill(os.getpid(), signal.SIGINT)


def test_a_resumed_run_stopped_in_its_test_names_a_config_it_wrote(capfd):
    """The config saver's setup runs again for the test after training; a resumed run
    then took the next name, config.resume-2.yaml, which is never written."""
    _, command = resume_command_of_a_resumed_run(capfd, 2, 3, "CtrlCOnceInTheTest")
    assert Path(command[4]).name == "config.resume-1.yaml" and Path(command[4]).is_file()


def test_a_callback_whose_state_a_checkpoint_cannot_tell_apart_is_one_line(tmp_path, capsys):
    """A ModelCheckpoint with the settings of the run's own keeper of last.ckpt: Lightning
    refuses two stateful callbacks with one state key, with a traceback."""
    with pytest.raises(SystemExit) as stopped:
        main([*QUIET, "--trainer.callbacks+=ModelCheckpoint", "--trainer.max_epochs", "1"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: two ModelCheckpoint callbacks")
    assert "last_checkpoint" in error[0]
    assert list(tmp_path.iterdir()) == []


class StopInValidation(L.Callback):
    """Ctrl-C during epoch 1's validation: after the epoch's last training batch."""

    def on_validation_batch_end(self, trainer, *args, **kwargs) -> None:
        if trainer.current_epoch == 1 and not trainer.sanity_checking:
            raise KeyboardInterrupt


# Lightning does not run the interrupted validation again (Lightning-AI/pytorch-lightning
# #19549), so the checkpoint callback finds no val/acc for that epoch.
@pytest.mark.filterwarnings("ignore:`ModelCheckpoint\\(monitor='val/acc'\\)` could not find")
def test_a_run_stopped_in_its_validation_resumes_from_the_interrupted_state():
    """The resumed epoch has no training batch left: its empty loss is not a divergence."""
    stopping = ["--trainer.callbacks+=tests.test_trust.StopInValidation"]
    with pytest.raises(SystemExit):
        main([*QUIET, *stopping, "--trainer.max_epochs", "4"])
    run = run_dir(Path.cwd(), 0)
    checkpoints = run / "checkpoints"
    assert read_checkpoint(checkpoints / "interrupted.ckpt")["epoch"] == 1
    resume = ["--config", str(run / "config.yaml"), "--trainer.callbacks", "null"]
    resumed = main([*QUIET, *resume, "--ckpt_path", str(checkpoints / "interrupted.ckpt")])
    assert read_checkpoint(checkpoints / "last.ckpt")["epoch"] == 3
    assert all(torch.isfinite(torch.tensor(value)) for _, value in scalars(run, "train/loss"))
    assert resumed.test_acc > 0.1


# 3. No lost work -----------------------------------------------------------------------


def test_checkpoint_write_that_dies_midway_leaves_the_previous_one(tmp_path: Path, monkeypatch):
    path = tmp_path / "last.ckpt"
    writer = SafeCheckpointIO()
    writer.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, path)

    def crash(_descriptor: int) -> None:
        raise KeyboardInterrupt  # as if the process died after writing, before the rename

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        writer.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 2}, path)
    assert read_checkpoint(path)["epoch"] == 1
    assert sorted(file.name for file in tmp_path.iterdir()) == ["last.ckpt"]


def test_a_checkpoint_is_as_readable_as_any_file_the_user_writes(tmp_path: Path):
    """A server or a teammate running as another user reads it, as the umask allows."""
    SafeCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}}, tmp_path / "a.ckpt")
    (tmp_path / "plain").write_bytes(b"")
    previous = os.umask(0o022)
    try:
        SafeCheckpointIO().save_checkpoint({"state_dict": {}}, tmp_path / "b.ckpt")
        (tmp_path / "plain_022").write_bytes(b"")
    finally:
        os.umask(previous)

    def mode(name: str) -> int:
        return (tmp_path / name).stat().st_mode & 0o777

    assert mode("a.ckpt") == mode("plain")
    assert mode("b.ckpt") == mode("plain_022") == 0o644


@pytest.mark.parametrize("logger", ["tensorboard", "none"])
def test_a_run_resumed_by_another_path_to_its_folder_keeps_its_best_epoch(
    tmp_path: Path, monkeypatch, logger: str
):
    """Lightning reloads a checkpoint callback's best epochs only when its folder is
    written as before, compared as text. Resumed from another working folder, or by an
    absolute path where the run wrote a relative one, it forgot them: its first epoch
    was saved as the best, however poor, and tested, and the old best left behind."""
    # The highest val/loss is the first epoch's: any later epoch kept as best is wrong.
    worst_loss = ["--checkpoint.monitor", "val/loss", "--checkpoint.mode", "max"]
    no_logger = ["--trainer.logger", "false"] if logger == "none" else []
    (tmp_path / "first").mkdir()
    monkeypatch.chdir(tmp_path / "first")
    first = main([*QUIET, *worst_loss, *no_logger, "--trainer.max_epochs", "3"])
    run = run_dir(tmp_path / "first", 0)
    best = Path(first.checkpoint).resolve()
    assert read_checkpoint(best)["epoch"] == 0
    if logger == "none":  # the same working folder, the path written out in full
        checkpoints = run.resolve() / "checkpoints"
    else:  # another working folder, the path relative to it
        (tmp_path / "second").mkdir()
        monkeypatch.chdir(tmp_path / "second")
        checkpoints = Path("../first/lightning_logs/digits/version_0/checkpoints")
    resume = ["--config", str(checkpoints.parent / "config.yaml")]
    resumed = main(
        [
            *QUIET,
            *resume,
            "--ckpt_path",
            str(checkpoints / "last.ckpt"),
            "--trainer.max_epochs",
            "5",
        ]
    )
    kept = sorted(path.name for path in (run / "checkpoints").glob("*.ckpt"))
    assert kept == [best.name, "last.ckpt"]
    # Under the key every earlier version wrote it with, so their files resume alike.
    assert LAST_CHECKPOINT_STATE in read_checkpoint(run / "checkpoints/last.ckpt")["callbacks"]
    assert Path(resumed.checkpoint).resolve() == best
    assert read_checkpoint(run / "checkpoints/last.ckpt")["epoch"] == 4


def test_resuming_from_a_checkpoint_before_the_runs_last_leaves_that_run_as_it_was(
    tmp_path: Path, capfd
):
    """Training on from a run's best epoch (not its last) starts a folder of its own: in
    the earlier run's, it would overwrite last.ckpt and hide the later epochs' curves."""
    # The highest val/loss is the first epoch's: the "best" checkpoint is not the last.
    worst_loss = ["--checkpoint.monitor", "val/loss", "--checkpoint.mode", "max"]
    first = main([*QUIET, *worst_loss, "--trainer.max_epochs", "3"])
    run = run_dir(tmp_path, 0)
    assert read_checkpoint(first.checkpoint)["epoch"] == 0
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    resume = ["--config", str(run / "config.yaml"), "--ckpt_path", first.checkpoint]
    resumed = main([*QUIET, *resume, "--trainer.max_epochs", "4"])
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before
    assert Path(resumed.log_dir).resolve() == run_dir(tmp_path, 1).resolve()
    assert read_checkpoint(run_dir(tmp_path, 1) / "checkpoints/last.ckpt")["epoch"] == 3
    printed = capfd.readouterr()
    assert f"Training on from {first.checkpoint} in a new folder" in printed.out + printed.err
    # With no epoch left to train, the new run saves nothing, and its checkpoint callbacks
    # still hold the earlier run's best path: calibration must not write into that file.
    main([*QUIET, *resume, "--trainer.max_epochs", "1"])
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before


def test_a_run_trained_on_in_a_new_folder_without_validation_tests_its_own_weights(
    tmp_path: Path,
):
    """Its checkpoint callback reloads the earlier run's best path; without validation it
    saves no best of its own, and that earlier file must not be tested or named."""
    worst_loss = ["--checkpoint.monitor", "val/loss", "--checkpoint.mode", "max"]
    first = main([*QUIET, *worst_loss, "--trainer.max_epochs", "3"])
    assert read_checkpoint(first.checkpoint)["epoch"] < 2, "the best is the last epoch now"
    resume = [
        "--config",
        str(run_dir(tmp_path, 0) / "config.yaml"),
        "--ckpt_path",
        first.checkpoint,
    ]
    no_validation = ["--trainer.limit_val_batches", "0", "--trainer.max_epochs", "5"]
    resumed = main([*QUIET, *resume, *no_validation])
    last = run_dir(tmp_path, 1) / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["epoch"] == 4
    assert resumed.checkpoint is None
    assert Path(resumed.last_checkpoint).resolve() == last.resolve()
    assert first.checkpoint not in "\n".join(resumed.lines())
    assert resumed.test_acc == pytest.approx(accuracy_on_the_test_split(last), abs=1e-6)


def test_a_loss_as_the_checkpoint_monitor_keeps_its_lowest_epoch(tmp_path: Path):
    """Only the metric changes on the command line; the kept epoch follows its direction."""
    # At this learning rate val/loss falls, then wavers: its lowest is neither the first
    # epoch nor the last.
    args = ["--checkpoint.monitor", "val/loss", "--model.lr", "0.03", "--trainer.max_epochs", "12"]
    summary = main([*QUIET, *args])
    losses = [value for _, value in scalars(run_dir(tmp_path, 0), "val/loss")]
    lowest = losses.index(min(losses))
    assert len(losses) == 12 and 0 < lowest < 11
    assert read_checkpoint(summary.checkpoint)["epoch"] == lowest
    # Calibration's val/ece is logged every epoch too, and is kept at its lowest likewise.
    summary = main([*QUIET, *args, "--checkpoint.monitor", "val/ece"])
    errors = [value for _, value in scalars(run_dir(tmp_path, 1), "val/ece")]
    assert read_checkpoint(summary.checkpoint)["epoch"] == errors.index(min(errors))


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_resuming_a_scheduled_run_for_longer_is_refused_before_anything_is_written(
    schedule: str, tmp_path: Path, capsys
):
    """The schedule was laid out over the run's steps: one-cycle would fail past them and
    cosine would warm up again, so a longer (or shorter) resumed run is refused."""
    first = main([*QUIET, "--model.lr_schedule", schedule, "--trainer.max_epochs", "2"])
    run = Path(first.log_dir)
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    last = run / "checkpoints/last.ckpt"
    capsys.readouterr()
    resume = ["--config", str(run / "config.yaml"), "--ckpt_path", str(last)]
    with pytest.raises(SystemExit) as exit_info:
        main([*QUIET, *resume, "--trainer.max_epochs", "3"])
    assert exit_info.value.code == 2
    steps = read_checkpoint(last)["global_step"]
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: model.lr_schedule={schedule} of {last} spans {steps} steps, and this run "
        f"{steps * 3 // 2}: resume with the length the run started with"
    ]
    # Lightning opens an event file for the run before any hook can look at its length:
    # that file is the only trace, and it holds no value (no summary: no scalar, no text).
    after = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    assert {path: after[path] for path in before} == before
    assert all(path.name.startswith("events.out") for path in set(after) - set(before))
    for path in set(after) - set(before):
        kinds = {event.WhichOneof("what") for event in EventFileLoader(str(path)).Load()}
        assert "file_version" in kinds and "summary" not in kinds
    assert not run_dir(tmp_path, 1).exists()


def test_last_ckpt_of_an_interrupted_run_is_its_latest_epoch_end_state(tmp_path: Path):
    """interrupted.ckpt is saved after last.ckpt; the resume command names last.ckpt."""
    checkpoints = tmp_path / "lightning_logs/digits/version_0/checkpoints"
    checkpoints.mkdir(parents=True)
    for name, step in (("epoch000.ckpt", 5), ("last.ckpt", 10), ("interrupted.ckpt", 13)):
        torch.save({"global_step": step, "state_dict": {}}, checkpoints / name)
    for name, continues in (
        ("last.ckpt", True),
        ("interrupted.ckpt", True),
        ("epoch000.ckpt", False),
    ):
        path = checkpoints / name
        assert continues_its_run(read_checkpoint(path), path) is continues, name


def test_bad_input_after_a_run_deletes_and_writes_nothing(tmp_path: Path, capsys):
    summary = main([*QUIET, "--trainer.max_epochs", "1"])
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    for bad in (
        ["--data.batch_size", "0"],
        ["--ckpt_path", summary.checkpoint, "--model.lr", "0.5"],
    ):
        with pytest.raises(SystemExit):
            main([*QUIET, *bad])
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before


# 4. Clear errors ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(trained: Path) -> Path:
    """A full checkpoint (optimizer and all), the kind a run resumes from."""
    return trained.parent / "last.ckpt"


def bad_files(folder: Path, good: Path) -> dict[str, Path]:
    truncated = folder / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:4000])
    corrupt = folder / "corrupt.ckpt"
    corrupt.write_text("not a checkpoint")
    config = folder / "broken.yaml"
    config.write_text("model:\n  lr: [1\n")
    return {"truncated": truncated, "corrupt": corrupt, "config": config}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--no_such_flag", "1"], "unrecognized arguments: --no_such_flag"),
        (["--model.lr", "fast"], 'Parser key "model.lr"'),
        (["--trainer.max_epochs", "0"], "trainer.max_epochs must be at least 1"),
        (["--trainer.max_epochs", "-1"], "goes with trainer.max_steps or trainer.max_time"),
        (
            ["--model.lr_schedule", "onecycle", "--trainer.max_epochs", "-1", *ONLY_TIME],
            "model.lr_schedule=onecycle needs the run's length in epochs or steps",
        ),
        (["--data.batch_size", "0"], "data.batch_size must be at least 1"),
        (["--model.lr", "0"], "model.lr must be positive"),
        (["--model.lr", "-1"], "model.lr must be positive"),
        (["--model.network.hidden_sizes", "[]"], "model.network.hidden_sizes must be positive"),
        (["--model.network.hidden_sizes", "[32, 0]"], "hidden_sizes must be positive"),
        (["--data.test_size", "1.5"], "data.test_size must be between 0 and 1"),
        (["--data.val_size", "0"], "data.val_size must be between 0 and 1"),
        (["--data.split_seed", "-1"], "data.split_seed must be 0 to 2**32 - 1, got -1"),
        (["--data.test_size", "0.999"], "too small to hold every class"),
        (["--model.network.dropout", "1"], "model.network.dropout must be in [0, 1)"),
        (
            ["--data.transforms+=digits.people.augment.Shift", "--data.transforms.pixels", "5"],
            "Shift.pixels must be 1 to 3",
        ),
        (["--data.shift", "1"], "--data.shift is now a transform: --data.transforms+="),
        (["--config", "missing.yaml"], "File does not exist"),
        (["--config", "{config}"], "Problems parsing config"),
        (["--ckpt_path", "missing.ckpt"], "checkpoint not found: missing.ckpt"),
        (["--ckpt_path", "{truncated}"], "is not a readable checkpoint"),
        (["--ckpt_path", "{corrupt}"], "is not a readable checkpoint"),
        (
            ["--ckpt_path", "{good}", "--model.network.hidden_sizes", "[64]"],
            "model.network.init_args.hidden_sizes=[64] but the checkpoint has [32]",
        ),
        (["--ckpt_path", "{good}", "--data.split_seed", "3"], "data.split_seed=3"),
        (
            ["--checkpoint.monitor", "val/accuracy"],
            "checkpoint.monitor=val/accuracy is not logged; validation logs val/acc, val/ece, "
            "val/loss",
        ),
    ],
)
def test_user_errors_are_one_line_exit_2_and_write_nothing(
    args, expected, checkpoint: Path, tmp_path: Path, capsys
):
    files = {**bad_files(tmp_path, checkpoint), "good": checkpoint}
    args = [arg.format(**files) for arg in args]
    with pytest.raises(SystemExit) as exit_info:
        main([*QUIET, *args])
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("error: ") and expected in stderr[0]
    assert not (tmp_path / "lightning_logs").exists()


def test_no_epoch_limit_is_lightnings_minus_one_with_a_step_limit(tmp_path: Path):
    """--trainer.max_epochs -1 is how Lightning trains without an epoch limit."""
    args = ["--trainer.max_epochs", "-1", "--trainer.max_steps", "15", "--model.lr_schedule"]
    summary = main([*QUIET, *args, "cosine"])
    assert read_checkpoint(Path(summary.log_dir) / "checkpoints/last.ckpt")["global_step"] == 15
    # Or with a time limit, and a schedule that needs no length.
    main([*QUIET, "--trainer.max_epochs", "-1", *ONLY_TIME])
    assert (tmp_path / "lightning_logs/digits/version_1/checkpoints/last.ckpt").exists()


def test_gpu_asked_for_without_one_is_a_one_line_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit) as exit_info:
        main([*QUIET, "--trainer.accelerator", "gpu"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: trainer.accelerator=gpu asks for a GPU, but torch finds none here"
    )


def test_checkpoint_of_another_network_is_refused(checkpoint: Path, tmp_path: Path, capsys):
    other = torch.load(checkpoint, weights_only=True)
    other["state_dict"]["network.0.weight"] = torch.zeros(16, 64)
    other_path = tmp_path / "other.ckpt"
    torch.save(other, other_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*QUIET, "--ckpt_path", str(other_path)])
    assert exit_info.value.code == 2
    assert "holds a different network: network.0.weight" in capsys.readouterr().err


def test_test_subcommand_takes_the_network_and_split_from_the_checkpoint(
    trained_standard: Path, tmp_path: Path
):
    digits_main(["test", *QUIET, "--ckpt_path", str(trained_standard)])
    run = run_dir(tmp_path, 0)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["network"]["init_args"]["hidden_sizes"] == [64]
    assert (saved["data"]["scale"], saved["data"]["split_seed"]) == ("standard", 2)
    images, labels = split_for_testing(trained_standard)
    probabilities = load_trained(trained_standard).probabilities(images)
    expected = (probabilities.argmax(axis=1) == labels).mean()
    assert scalars(run, "test/acc")[0][1] == pytest.approx(expected, abs=1e-6)


def test_test_subcommand_takes_the_checkpoints_settings_unless_told_otherwise(
    checkpoint: Path, capsys
):
    with pytest.raises(SystemExit) as exit_info:
        digits_main(
            ["test", *QUIET, "--ckpt_path", str(checkpoint), "--model.network.hidden_sizes", "[8]"]
        )
    assert exit_info.value.code == 2
    assert "hidden_sizes=[8] but the checkpoint has [32]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "validation",
    [[], ["--trainer.val_check_interval", "0.5"], ["--trainer.check_val_every_n_epoch", "2"]],
    ids=["every epoch", "twice an epoch", "every other epoch"],
)
def test_diverging_training_stops_naming_the_epoch_and_keeps_no_broken_model(
    tmp_path: Path, capsys, validation: list[str]
):
    """Validated other than at each epoch's end, the best checkpoint is written after
    validation, before the epoch ends: the loss is checked before validation too."""
    with pytest.raises(SystemExit) as exit_info:
        main([*QUIET, *validation, "--model.lr", "1e30", "--trainer.max_epochs", "3"])
    # Not 2: that is a mistake found before anything was written, and this run wrote logs.
    assert exit_info.value.code == 3
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: training diverged: train/loss is nan in epoch 0")
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.slow
def test_a_two_process_run_that_diverges_stops_in_every_process_and_keeps_nothing(
    tmp_path: Path,
):
    """Each process checks the mean of every process's loss, so they stop together."""
    ddp = [*FIT, "--config", str(DDP_CONFIG), "--model.lr", "1e30", "--trainer.max_epochs", "3"]
    finished = subprocess.run(ddp, capture_output=True, text=True, timeout=180)
    assert finished.returncode == 3, finished.stderr[-2000:]
    errors = [line for line in finished.stderr.splitlines() if line.startswith("error:")]
    assert errors and all(
        line.startswith("error: training diverged: train/loss is nan in epoch 0") for line in errors
    )
    assert "Traceback" not in finished.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


def test_a_large_but_finite_learning_rate_still_finishes():
    summary = main([*QUIET, "--model.lr", "1e3", "--trainer.max_epochs", "2"])
    assert summary.checkpoint is not None


# 5. Safe loading ------------------------------------------------------------------------


class Payload:
    """Unpickling this would create a folder: proof that code ran."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __reduce__(self):
        return (os.mkdir, (str(self.folder),))


def test_a_checkpoint_that_would_run_code_is_refused_unopened(tmp_path: Path, capsys):
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Payload(tmp_path / "pwned")}, evil)
    with pytest.raises(SystemExit) as exit_info:
        main([*QUIET, "--ckpt_path", str(evil)])
    assert exit_info.value.code == 2
    assert "refusing to load" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists()


def test_run_checkpoints_load_with_weights_only(checkpoint: Path):
    assert torch.load(checkpoint, weights_only=True)["state_dict"]


# 6. Multi-process training --------------------------------------------------------------


@pytest.mark.slow
def test_two_nodes_rehearsed_with_torchrun_test_as_one_process_and_write_once(tmp_path: Path):
    """The multi-machine command of docs/scaling.md, both "machines" on 127.0.0.1."""
    with two_nodes(["--trainer.max_epochs", "3"]) as nodes:
        outputs = [process.communicate(timeout=240) for process in nodes]
    for process, (_, stderr) in zip(nodes, outputs, strict=True):
        assert process.returncode == 0, stderr[-2000:]
    (first, _), (second, _) = outputs
    assert "test/acc" in first and "test/acc" not in second  # rank 0 prints the summary
    # Written once, by rank 0: one run folder, one writer of events, one best checkpoint.
    runs = list((tmp_path / "lightning_logs" / "digits").iterdir())
    assert [run.name for run in runs] == ["version_0"]
    run = runs[0]
    # Every event file by one process (the name ends in its pid and a counter).
    writers = {path.name.split(".")[-2] for path in run.glob("events.out.tfevents.*")}
    assert len(writers) == 1
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == sorted(
        [best.name, "last.ckpt"]
    )
    # The two nodes scored the test split as one process scores the same checkpoint.
    digits_main(["test", *QUIET, "--ckpt_path", str(best)])
    assert scalars(run_dir(tmp_path, 1), "test/acc")[0][1] == scalars(run, "test/acc")[0][1]


@pytest.mark.parametrize("entry", ["digits.fit", "digits"])
def test_the_process_group_is_closed_when_a_run_ends_with_an_exit_code(
    entry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A DDP process that ended with its group still open (a run refused in a callback,
    SIGTERM) sometimes died at exit instead, SIGABRT: "terminate called without an active
    exception" from gloo's threads, so torchrun saw -6 where the run said 2."""
    import digits.__main__
    import digits.fit

    def refused_once_the_group_is_up(*args, **kwargs):
        store = f"file://{tmp_path / 'store'}"
        dist.init_process_group("gloo", init_method=store, rank=0, world_size=1)
        raise SystemExit(2)

    if entry == "digits.fit":
        monkeypatch.setattr(digits.fit, "train", refused_once_the_group_is_up)
        run = main
    else:
        monkeypatch.setattr(digits.__main__, "DigitsCLI", refused_once_the_group_is_up)
        run = digits_main
    try:
        with pytest.raises(SystemExit) as ended:
            run([*QUIET] if entry == "digits.fit" else ["fit", *QUIET])
        assert ended.value.code == 2
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():  # left open by the code under test: not for other tests
            dist.destroy_process_group()


@contextlib.contextmanager
def two_nodes(fit_args: list[str]) -> Iterator[list[subprocess.Popen]]:
    """``digits.fit`` started by torchrun as on two machines, one process each; whatever
    of them is left when the test ends (a timeout, a failed assertion) is killed."""
    port = str(free_port())
    node = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
    node += ["--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", port]
    fit = ["-m", "digits.fit", *QUIET, "--trainer.accelerator", "cpu"]
    fit += ["--trainer.strategy", "ddp", "--trainer.num_nodes", "2", "--trainer.devices", "1"]
    nodes = [
        subprocess.Popen(
            [*node, "--node-rank", str(rank), *fit, *fit_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for rank in (0, 1)
    ]
    try:
        yield nodes
    finally:
        for process in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_two_node_resume_of_another_length_is_refused_once_and_no_node_waits(
    tmp_path: Path,
):
    """Each process finds the mistake in a callback; the first says it, the others end
    with the same exit code without a word. On one machine Lightning's launcher kills the
    other processes when the first fails; a process on another machine it cannot kill,
    so this is where the others' own silent exit is seen."""
    onecycle = ["--model.lr_schedule", "onecycle"]
    with two_nodes([*onecycle, "--trainer.max_epochs", "2"]) as nodes:
        for process in nodes:
            _, stderr = process.communicate(timeout=240)
            assert process.returncode == 0, stderr[-2000:]
    run = run_dir(tmp_path, 0)
    last = run / "checkpoints/last.ckpt"
    resume = ["--config", str(run / "config.yaml"), "--ckpt_path", str(last)]
    with two_nodes([*resume, *onecycle, "--trainer.max_epochs", "3"]) as nodes:
        stderrs = [ended_within(process, 120, group=True) for process in nodes]
    # torchrun reports each worker's exit code in its own words, and fails too: both
    # workers ended by themselves with 2, neither stopped by torchrun for the other.
    assert all(process.returncode != 0 for process in nodes)
    for stderr in stderrs:
        assert re.search(r"exitcode\s*:\s*2\b", stderr), stderr[-3000:]
    errors = [
        line for stderr in stderrs for line in stderr.splitlines() if line.startswith("error:")
    ]
    assert len(errors) == 1, stderrs
    assert "resume with the length the run started with" in errors[0]
    assert "error: model.lr_schedule" in stderrs[0]
    assert not run_dir(tmp_path, 1).exists()


DDP_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "ddp_cpu.yaml"


class CollectiveOnTheDevice:
    """A strategy whose all-reduce would read a tensor on the training device."""

    def reduce_boolean_decision(self, *args, **kwargs):
        raise AssertionError("the stop flag went through the strategy's collective")


def test_the_processes_agree_on_a_stop_through_a_cpu_group_not_the_strategy():
    """On GPUs, the strategy's all-reduce after every batch would make the host wait."""
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        trainer = SimpleNamespace(
            world_size=2,
            logger=None,
            log_dir=None,
            num_training_batches=10,
            strategy=CollectiveOnTheDevice(),
        )
        callback = InterruptCheckpoint()
        callback.setup(trainer, None, "fit")
        callback.on_train_batch_end(trainer, None, None, None, 0)  # nothing received
        callback.received = signal.SIGTERM
        with pytest.raises(SIGTERMException):
            callback.on_train_batch_end(trainer, None, None, None, 0)
        callback.teardown(trainer, None, "fit")
    finally:
        dist.destroy_process_group()


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before")
@pytest.mark.parametrize(
    ("sent", "code", "name"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")]
)
@pytest.mark.slow
def test_a_two_process_run_stops_on_a_signal_saves_once_and_resumes_exactly(
    tmp_path: Path, sent, code, name
):
    """SIGTERM goes to the started process (as Slurm or Kubernetes send it), Ctrl-C to
    the whole process group (as a terminal sends it)."""
    epochs = 12
    ddp = [*FIT, "--config", str(DDP_CONFIG), "--trainer.max_epochs", str(epochs)]
    process = subprocess.Popen(
        ddp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    run = run_dir(tmp_path, 0)
    try:
        wait_for(run / "checkpoints" / "last.ckpt", process)
        workers = children(process.pid)
        if sent == signal.SIGINT:
            os.killpg(process.pid, sent)
        else:
            process.send_signal(sent)
        stderr = ended_within(process, 30, group=True)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(cmdline(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if cmdline(pid)], "a process outlived the run"
    assert process.returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert stderr.count(f"Stopped by {name}") == 1
    assert stderr.count("To resume") == 1
    assert [path.name for path in (run / "checkpoints").glob("interrupted*")] == [
        "interrupted.ckpt"
    ]
    last = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["epoch"] < epochs - 1, "the signal came too late to test a resume"
    command = stderr.strip().splitlines()[-1].split()
    assert command[-1] == str(Path("lightning_logs/digits/version_0/checkpoints/last.ckpt"))
    if sent == signal.SIGINT:
        return  # the resume below is the same for both signals

    resume = ["--config", command[4], "--ckpt_path", command[-1]]
    resumed = subprocess.run([*ddp, *resume], capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    uninterrupted = subprocess.run(ddp, capture_output=True, text=True, timeout=180)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]
    assert "terminate called" not in uninterrupted.stderr
    assert curves(run) == curves(run_dir(tmp_path, 1))
    check_it_tests_as_one_process_would(run_dir(tmp_path, 1), tmp_path)


def check_it_tests_as_one_process_would(run: Path, tmp_path: Path) -> None:
    """A two-process run trains the default's recipe and scores as one process would."""
    # The same global batch as the default (64 per process): the same steps per epoch.
    single = DigitsCLI(run=False, args=QUIET).datamodule
    single.setup("fit")
    steps = [step for step, _ in scalars(run, "val/acc")]
    assert steps[:2] == [len(single.train_dataloader()) - 1, 2 * len(single.train_dataloader()) - 1]
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    # The same checkpoint in one process: test (450 images, 225 per process) and
    # validation (135 images: 68 and 67, the uneven case the sampler exists for).
    digits_main(["test", *QUIET, "--ckpt_path", str(best)])
    assert scalars(run_dir(tmp_path, 2), "test/acc")[0][1] == scalars(run, "test/acc")[0][1]
    digits_main(["validate", *QUIET, "--ckpt_path", str(best)])
    ((_, single_val_acc),) = scalars(run_dir(tmp_path, 3), "val/acc")
    ddp_val_acc = [value for _, value in scalars(run, "val/acc")]
    assert ddp_val_acc[read_checkpoint(best)["epoch"]] == single_val_acc
    val_loss = [value for _, value in scalars(run, "val/loss")][read_checkpoint(best)["epoch"]]
    assert val_loss == pytest.approx(scalars(run_dir(tmp_path, 3), "val/loss")[0][1], rel=1e-6)
    # The pictures are drawn by one process without waiting on the other.
    assert "test/confusion_matrix" in read_events(run).Tags()["images"]


@pytest.mark.slow
def test_two_processes_predict_says_what_both_read(checkpoint: Path):
    """Each DDP process reads its share of the images; the line counts them all, once."""
    args = ["digits", "predict", *QUIET, "--ckpt_path", str(checkpoint)]
    one = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)
    two = subprocess.run(
        [sys.executable, "-m", *args, "--config", str(DDP_CONFIG)], capture_output=True, text=True
    )
    assert one.returncode == two.returncode == 0, two.stderr[-2000:]
    said = [line for line in one.stdout.splitlines() if line.startswith("predict: ")]
    assert said and said[0].startswith("predict: read 450 images, ")
    assert [line for line in two.stdout.splitlines() if line.startswith("predict: ")] == said
