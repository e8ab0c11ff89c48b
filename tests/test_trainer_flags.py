"""The Trainer flags a Lightning user reaches for: each works end to end or is refused."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.loggers import Logger

from digits.dataset import DigitsSplits
from digits.fit import main
from digits.reading.checkpoint import read_checkpoint
from digits.reading.trained import load_trained
from tests.conftest import QUIET, accuracy_on_the_test_split, read_events, scalars

TWO_EPOCHS = [*QUIET, "--trainer.max_epochs", "2"]
TRAIN_BATCHES = 10  # 1,212 training images in batches of 128


def files_of(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def last_checkpoint(summary) -> dict:
    return read_checkpoint(Path(summary.log_dir) / "checkpoints" / "last.ckpt")


@pytest.mark.parametrize(
    ("precision", "dtype"),
    [("64-true", torch.float64), ("bf16-true", torch.bfloat16), ("bf16-mixed", torch.float32)],
)
def test_precision_trains_tests_and_draws_in_that_precision(precision, dtype):
    summary = main([*TWO_EPOCHS, "--trainer.precision", precision])
    weights = read_checkpoint(summary.checkpoint)["state_dict"]["network.0.weight"]
    assert weights.dtype == dtype
    assert scalars(Path(summary.log_dir), "test/acc")[0][1] == pytest.approx(summary.test_acc)
    # The pictures run the model on whole splits too, in the same precision.
    assert "test/confusion_matrix" in read_events(Path(summary.log_dir)).Tags()["images"]


def test_float16_throughout_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*TWO_EPOCHS, "--trainer.precision", "16-true"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: trainer.precision=16-true") and "bf16-true" in line


def test_without_a_logger_each_run_still_gets_its_own_folder(tmp_path: Path):
    first = main([*TWO_EPOCHS, "--trainer.logger", "false"])
    kept = files_of(tmp_path)
    second = main([*TWO_EPOCHS, "--trainer.logger", "false"])
    folders = [Path(first.log_dir), Path(second.log_dir)]
    assert [folder.name for folder in folders] == ["version_0", "version_1"]
    for folder in folders:
        assert (folder / "config.yaml").is_file() and (folder / "checkpoints/last.ckpt").is_file()
        assert not list(folder.glob("events.out.tfevents.*"))
    assert files_of(tmp_path).items() >= kept.items()  # the first run's files untouched
    assert first.tensorboard_logdir is None and first.test_acc == second.test_acc
    assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "checkpoints").exists()


def test_a_logger_less_runs_config_run_again_is_a_new_run_beside_it(tmp_path: Path):
    """Its config.yaml names the run's folder as default_root_dir; run again, it is not
    a root to nest a run in but a run to put the next one beside."""
    first = main([*TWO_EPOCHS, "--trainer.logger", "false"])
    kept = files_of(tmp_path)
    again = main([*QUIET, "--config", str(Path(first.log_dir) / "config.yaml")])
    assert Path(again.log_dir).resolve() == (Path(first.log_dir).parent / "version_1").resolve()
    assert files_of(tmp_path).items() >= kept.items()
    assert again.test_acc == first.test_acc


def test_a_csv_logger_writes_its_own_run_folders(tmp_path: Path):
    csv_logger = ["--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", "csv_logs"]
    first = main([*TWO_EPOCHS, *csv_logger])
    second = main([*TWO_EPOCHS, *csv_logger])
    assert [Path(run.log_dir).name for run in (first, second)] == ["version_0", "version_1"]
    rows = list(csv.DictReader((Path(first.log_dir) / "metrics.csv").open()))
    assert [float(row["val/acc"]) for row in rows if row.get("val/acc")][-1] == pytest.approx(
        first.best_score
    )
    assert [float(row["test/acc"]) for row in rows if row.get("test/acc")] == pytest.approx(
        [first.test_acc]
    )


class SharedFolderLogger(Logger):
    """A logger whose ``save_dir`` every run shares, as MLflow's ``./mlruns`` is; each run
    is a version of its own (MLflow's run id)."""

    def __init__(self, save_dir: str = "shared", version: str | None = None) -> None:
        super().__init__()
        self._save_dir = save_dir
        self._version = version or uuid.uuid4().hex[:8]

    @property
    def name(self) -> str:
        return "runs"

    @property
    def version(self) -> str:
        return self._version

    @property
    def save_dir(self) -> str:
        return self._save_dir

    def log_metrics(self, metrics, step=None) -> None:
        pass

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


def test_a_logger_whose_folder_every_run_shares_still_gives_each_run_its_own(capfd):
    """Lightning's ``trainer.log_dir`` is such a logger's ``save_dir``: the first run's
    config.yaml went there, and the second run stopped with a traceback before training."""
    shared = ["--trainer.logger", "tests.test_trainer_flags.SharedFolderLogger"]
    runs = [main([*TWO_EPOCHS, *shared]) for _ in range(2)]
    folders = [Path(run.log_dir) for run in runs]
    assert folders[0] != folders[1]
    for run, folder in zip(runs, folders, strict=True):
        assert folder.parent.name == "runs"
        assert Path(run.checkpoint).parent == folder / "checkpoints"
        assert yaml.safe_load((folder / "config.yaml").read_text())["trainer"]["max_epochs"] == 2
        assert last_checkpoint(run)["epoch"] == 1
    assert f"logs          {folders[1]}" in capfd.readouterr().out


def test_a_taken_version_of_a_shared_folder_logger_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys
):
    """Such a logger's runs are numbered by the logger itself, so the project cannot see a
    taken version while reading the command line, only once the logger names its folder."""
    given = ["--trainer.logger", "tests.test_trainer_flags.SharedFolderLogger"]
    given += ["--trainer.logger.version", "mine"]
    first = main([*TWO_EPOCHS, *given])
    kept = files_of(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*TWO_EPOCHS, *given])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {Path(first.log_dir, 'config.yaml')} holds an earlier run")
    assert files_of(tmp_path) == kept


def test_a_version_folder_given_by_hand_is_never_reused(tmp_path: Path, capsys):
    main([*TWO_EPOCHS])
    kept = files_of(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*TWO_EPOCHS, "--trainer.logger.version", "0"])
    assert exit_info.value.code == 2
    assert "version_0 holds an earlier run" in capsys.readouterr().err
    assert files_of(tmp_path) == kept


def test_limits_cut_every_stage():
    # As Lightning reads them: an int is a number of batches, a float a fraction (and
    # jsonargparse reads "1" as 1.0, all of them, which Lightning says when it starts).
    limits = ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0.5"]
    summary = main([*TWO_EPOCHS, *limits, "--trainer.limit_test_batches", "2"])
    assert last_checkpoint(summary)["global_step"] == 2 * 2
    # Validation on 1 batch of 128 of its 135 images, testing on 2 batches of 128.
    val_acc = [value for _, value in scalars(Path(summary.log_dir), "val/acc")]
    assert all(value * 128 == pytest.approx(round(value * 128), abs=1e-3) for value in val_acc)
    assert summary.test_acc * 256 == pytest.approx(round(summary.test_acc * 256), abs=1e-3)


def test_no_test_batches_skips_the_test_and_says_so(capsys):
    """Lightning's limit_test_batches=0 skips testing; the summary says so instead of a score."""
    summary = main([*TWO_EPOCHS, "--trainer.limit_test_batches", "0"])
    assert summary.test_acc is None
    assert "test/acc" not in read_events(Path(summary.log_dir)).Tags()["scalars"]
    printed = capsys.readouterr().out
    assert "test/acc      not run (trainer.limit_test_batches=0)" in printed
    assert "sure          probability >= " in printed  # chosen on validation all the same
    assert Path(summary.checkpoint).is_file()


def test_validation_every_second_epoch_still_keeps_the_best_and_the_last():
    summary = main([*QUIET, "--trainer.max_epochs", "3", "--trainer.check_val_every_n_epoch", "2"])
    assert [step for step, _ in scalars(Path(summary.log_dir), "val/acc")] == [
        2 * TRAIN_BATCHES - 1
    ]
    assert read_checkpoint(summary.checkpoint)["epoch"] == 1
    assert last_checkpoint(summary)["epoch"] == 2


def test_validation_twice_per_epoch_logs_twice_per_epoch():
    summary = main([*TWO_EPOCHS, "--trainer.val_check_interval", "0.5"])
    assert len(scalars(Path(summary.log_dir), "val/acc")) == 4


def test_gradient_accumulation_steps_once_per_two_batches():
    summary = main([*TWO_EPOCHS, "--trainer.accumulate_grad_batches", "2"])
    assert last_checkpoint(summary)["global_step"] == 2 * TRAIN_BATCHES // 2


def test_early_stopping_ends_the_run_and_the_best_checkpoint_is_tested():
    stop = ["--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor=val/acc"]
    stop += ["--trainer.callbacks.mode=max", "--trainer.callbacks.min_delta=0.5"]
    stop += ["--trainer.callbacks.patience=1"]
    summary = main([*QUIET, "--trainer.max_epochs", "20", *stop])
    assert len(scalars(Path(summary.log_dir), "val/acc")) == 2  # no 0.5 jump after epoch 0
    assert summary.checkpoint is not None


def test_the_simple_profiler_writes_its_report():
    profile = ["--trainer.profiler", "SimpleProfiler", "--trainer.profiler.dirpath", "profile"]
    summary = main([*TWO_EPOCHS, *profile, "--trainer.profiler.filename", "report"])
    report = (Path("profile") / "fit-report.txt").read_text()
    assert "run_training_epoch" in report
    assert summary.checkpoint is not None


def test_worker_processes_give_the_same_run_as_none():
    in_process = main([*TWO_EPOCHS])
    workers = main([*TWO_EPOCHS, "--data.num_workers", "2"])
    for tag in ("train/loss", "val/acc", "test/acc"):
        assert scalars(Path(workers.log_dir), tag) == scalars(Path(in_process.log_dir), tag)


def test_checkpointing_off_keeps_no_file_and_tests_the_final_weights(tmp_path: Path):
    summary = main([*TWO_EPOCHS, "--trainer.enable_checkpointing", "false"])
    assert not list(tmp_path.rglob("*.ckpt"))
    assert summary.checkpoint is None and summary.best_score is None
    assert "test/acc      " in summary.lines()[1] and "(the final weights)" in summary.lines()[1]
    # The same training with checkpoints: its last epoch's weights score the same.
    kept = main([*TWO_EPOCHS])
    trained = load_trained(Path(kept.log_dir) / "checkpoints" / "last.ckpt")
    images, labels = DigitsSplits().arrays("test", scaled=False)
    accuracy = (trained.probabilities(images).argmax(axis=1) == labels).mean()
    assert accuracy == pytest.approx(summary.test_acc, abs=1e-6)


def test_barebones_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*TWO_EPOCHS, "--trainer.barebones", "true"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: trainer.barebones=true is not supported")


@pytest.mark.parametrize(
    "strategy",
    [
        ["--trainer.strategy", "ddp_spawn"],
        ["--trainer.strategy", "ddp_notebook_find_unused_parameters_true"],
        ["--trainer.strategy", "DDPStrategy", "--trainer.strategy.start_method", "fork"],
    ],
)
def test_strategies_that_train_in_processes_started_from_this_one_are_refused(
    strategy: list[str], tmp_path: Path, capsys
):
    """They failed after training (KeyError: 'digits_yaml', then 'not a Lightning
    checkpoint', then the summary's checkpoint path None): the callbacks and the summary
    of this process miss what its children did."""
    with pytest.raises(SystemExit) as exit_info:
        main([*TWO_EPOCHS, "--trainer.devices", "2", *strategy])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.endswith(
        "trains in processes started from this one, whose summary and checkpoints would "
        "miss what they did; use --trainer.strategy ddp, which starts each process anew"
    ), line
    assert not (tmp_path / "lightning_logs").exists()


def test_without_validation_the_summary_names_the_last_epochs_checkpoint():
    summary = main([*QUIET, "--trainer.max_epochs", "2", "--trainer.limit_val_batches", "0"])
    last = Path(summary.log_dir) / "checkpoints" / "last.ckpt"
    assert summary.checkpoint is None and last.is_file()
    assert torch.load(last, weights_only=True)["epoch"] == 1
    line = f"checkpoint    {last}  (the last epoch; none chosen by validation)"
    assert line in summary.lines()


def test_without_validation_a_last_ckpt_of_an_earlier_epoch_says_its_epoch():
    every_other = ("--last_checkpoint.every_n_epochs", "2", "--trainer.limit_val_batches", "0")
    summary = main([*QUIET, "--trainer.max_epochs", "3", *every_other])
    last = Path(summary.log_dir) / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 1  # the final weights are epoch 2's
    line = f"checkpoint    {last}  (epoch 1, the last saved; none chosen by validation)"
    assert line in summary.lines()


def test_with_no_epoch_validated_the_final_weights_are_tested_not_last_ckpts():
    """The sanity check gives Calibrate validation loaders, but no epoch is validated, so no
    best is saved: last.ckpt (epoch 1) and the final weights (epoch 2) are each fitted on
    their own, and the final weights, not last.ckpt's, are what the test reads."""
    final_run = main([*QUIET, "--trainer.max_epochs", "3"])  # the same run, every epoch kept
    final = Path(final_run.log_dir) / "checkpoints" / "last.ckpt"
    rarely = ("--trainer.check_val_every_n_epoch", "100", "--last_checkpoint.every_n_epochs", "2")
    summary = main([*QUIET, "--trainer.max_epochs", "3", *rarely])
    last = Path(summary.log_dir) / "checkpoints" / "last.ckpt"
    assert summary.checkpoint is None
    assert (read_checkpoint(final)["epoch"], read_checkpoint(last)["epoch"]) == (2, 1)
    assert accuracy_on_the_test_split(final) != pytest.approx(accuracy_on_the_test_split(last))
    assert summary.test_acc == pytest.approx(accuracy_on_the_test_split(final), abs=1e-6)
