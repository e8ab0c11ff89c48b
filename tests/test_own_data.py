"""Your own data by class path: examples/wine.py trained, resumed and refused as the guide says.

The commands run as real processes from a folder holding a copy of ``examples/``, the
way docs/adapt.md runs them from the repository's root.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from torch.utils.data import DataLoader, TensorDataset, random_split

from digits.errors import UsageError
from digits.fit import main as fit_main
from digits.training.own_data import (
    classes_in,
    label_summary,
    num_classes_of,
    num_features_of,
)
from tests.conftest import QUIET, scalars

ROOT = Path(__file__).resolve().parents[1]
DATA = "examples.wine.WineDataModule"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def examples(in_tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", in_tmp_path / "examples")
    return in_tmp_path


@pytest.mark.slow
def test_a_data_module_of_your_own_trains_resumes_and_is_summarised(examples: Path) -> None:
    first = run("digits.fit", *QUIET, "--data", DATA, "--trainer.max_epochs", "3")
    assert first.returncode == 0, first.stderr
    run_dir = examples / "lightning_logs" / "digits" / "version_0"
    assert f"logs          {run_dir.relative_to(examples)}" in first.stdout
    assert "test/acc" in first.stdout
    config = (run_dir / "config.yaml").read_text()
    assert f"class_path: {DATA}" in config and "batch_size: 16" in config  # its own default
    last = run_dir / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=False)
    assert saved["hyper_parameters"]["num_features"] == 13
    assert saved["hyper_parameters"]["num_classes"] == 3

    resumed = run(
        "digits.fit", *QUIET, "--config", str(run_dir / "config.yaml"),
        "--ckpt_path", str(last), "--trainer.max_epochs", "5",
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    # The same run went on: five epochs of val/acc in its own folder, and no second run.
    assert [step for step, _ in scalars(run_dir, "val/acc")] == sorted(
        step for step, _ in scalars(run_dir, "val/acc")
    )
    assert len(scalars(run_dir, "val/acc")) == 5
    assert not (examples / "lightning_logs" / "digits" / "version_1").exists()
    assert torch.load(last, weights_only=False)["epoch"] == 4
    assert "best val/acc" in resumed.stdout and "test/acc" in resumed.stdout


@pytest.mark.parametrize(
    ("named", "help_of", "says"),
    [
        ([], DATA, "The wine data set, split 60/20/20 by class"),
        (["--data", DATA], DATA, "The wine data set, split 60/20/20 by class"),
        ([], "digits.DigitsDataModule", "--data.split_seed SPLIT_SEED"),
    ],
    ids=["help-alone", "with-data", "this-projects"],
)
def test_the_help_of_a_data_class(
    examples: Path, named: list[str], help_of: str, says: str
) -> None:
    """``--data.help CLASS`` says the class's own arguments, with ``--data CLASS`` or
    without it, for this project's class too (each was "unrecognized arguments"), and
    writes nothing; its usage names the command (it said ``usage: fit.py``)."""
    result = run("digits.fit", *named, "--data.help", help_of)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m digits.fit [--data.batch_size")
    assert f"Help for --data.help={help_of}" in result.stdout
    assert says in result.stdout
    assert "--data.batch_size BATCH_SIZE" in result.stdout
    assert not (examples / "lightning_logs").exists()


@pytest.mark.slow
def test_its_checkpoint_is_refused_in_one_line_where_digits_are_needed(examples: Path) -> None:
    trained = run("digits.fit", *QUIET, "--data", DATA, "--trainer.max_epochs", "1")
    assert trained.returncode == 0, trained.stderr
    last = "lightning_logs/digits/version_0/checkpoints/last.ckpt"

    on_digits = run("digits.fit", *QUIET, "--ckpt_path", last, "--trainer.max_epochs", "2")
    assert on_digits.returncode == 2
    assert on_digits.stderr.strip().splitlines() == [
        f"error: {last} was trained on the data {DATA}; name it as this run's data: "
        f"--data {DATA} (or --config RUN/config.yaml)"
    ]
    (examples / "image.npy").write_bytes(b"")
    for command in (
        ["digits.predict", "--ckpt_path", last, "image.npy"],
        ["digits.export", "--ckpt_path", last, "--output", "model.onnx"],
        ["digits.drawn", "--ckpt_path", last],
        ["digits.serve", "--ckpt_path", last, "--port", "8765"],
    ):
        refused = run(*command)
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert lines == [
            f"error: {last} was trained on {DATA} (13 features), not on 8x8 digits; score it "
            "with python -m digits test --config RUN/config.yaml --ckpt_path CKPT"
        ], command
    assert not (examples / "model.onnx").exists()


@pytest.mark.slow
def test_its_checkpoint_is_tested_on_the_split_it_was_trained_on(examples: Path) -> None:
    """Your data module's saved settings are adopted and checked, as the project's are."""
    trained = run(
        "digits.fit", *QUIET, "--data", DATA, "--data.split_seed", "1", "--trainer.max_epochs", "1"
    )
    assert trained.returncode == 0, trained.stderr
    last = "lightning_logs/digits/version_0/checkpoints/last.ckpt"

    tested = run("digits", "test", *QUIET, "--data", DATA, "--ckpt_path", last)
    assert tested.returncode == 0, tested.stderr
    config = yaml.safe_load((examples / "lightning_logs/digits/version_1/config.yaml").read_text())
    assert config["data"]["init_args"]["split_seed"] == 1  # the checkpoint's, not the default 0

    other_split = run(
        "digits", "test", *QUIET, "--data", DATA, "--data.split_seed", "2", "--ckpt_path", last
    )
    assert other_split.returncode == 2
    assert other_split.stderr.strip().splitlines() == [
        f"error: {last} does not match the config: data.split_seed=2 but the checkpoint has 1"
    ]
    assert not (examples / "lightning_logs/digits/version_2").exists()
    # batch_size is not among the class's checkpoint_settings: it may differ.
    other_batches = run(
        "digits", "test", *QUIET, "--data", DATA, "--data.batch_size", "4", "--ckpt_path", last
    )
    assert other_batches.returncode == 0, other_batches.stderr


def test_a_config_file_naming_the_data_class_is_read_in_subclass_mode(examples: Path) -> None:
    from digits.training.own_data import names_other_data

    (examples / "wine.yaml").write_text(f"data:\n  class_path: {DATA}\n")
    (examples / "digits.yaml").write_text("data:\n  batch_size: 32\n")
    assert names_other_data(["--config", "wine.yaml"])
    assert names_other_data([f"--data={DATA}", "--data.batch_size", "8"])
    assert names_other_data(["--data", "{class_path: " + DATA + "}"])
    assert not names_other_data(["--config", "digits.yaml", "--data.batch_size", "8"])
    assert not names_other_data(["--data", "digits.DigitsDataModule"])
    assert not names_other_data(["--config", str(ROOT / "configs" / "best.yaml")])


def test_a_data_module_instance_or_factory_is_taken_as_jsonargparse_takes_it(
    examples: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An importable instance, and a function annotated to return a data module, are
    what jsonargparse accepts for a class path; the check that refuses a function or
    another class refused them too (helper-31)."""
    (examples / "made.py").write_text(
        "from examples.wine import WineDataModule\n\n"
        "instance = WineDataModule(batch_size=4)\n\n\n"
        "def factory(batch_size: int = 4) -> WineDataModule:\n"
        "    return WineDataModule(batch_size=batch_size)\n"
    )
    monkeypatch.syspath_prepend(examples)
    for words, data in (
        (["--data", "made.instance"], "made.instance"),
        (
            ["--data", "made.factory", "--data.batch_size", "8"],
            {"class_path": "made.factory", "init_args": {"batch_size": 8}},
        ),
    ):
        with pytest.raises(SystemExit) as printed:
            fit_main([*words, "--print_config"])
        assert printed.value.code == 0, capsys.readouterr().err
        assert yaml.safe_load(capsys.readouterr().out)["data"] == data


def test_a_config_whose_data_is_a_file_of_its_own_names_its_class(
    examples: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``data: wine_data.yaml`` (jsonargparse reads it from beside the config) and ``data:
    CLASS`` were not seen to name a class: "Group 'data' does not accept option
    'init_args.batch_size'"."""
    from digits.training.own_data import names_other_data

    (examples / "configs").mkdir()
    (examples / "configs" / "wine_data.yaml").write_text(
        f"class_path: {DATA}\ninit_args:\n  batch_size: 8\n"
    )
    (examples / "configs" / "run.yaml").write_text("data: wine_data.yaml\n")
    (examples / "configs" / "by_name.yaml").write_text(f"data: {DATA}\n")
    (examples / "configs" / "digits_data.yaml").write_text("batch_size: 32\n")
    (examples / "configs" / "digits_run.yaml").write_text("data: digits_data.yaml\n")
    # jsonargparse reads data: FILE from beside the config only, not from the working folder
    (examples / "configs" / "elsewhere.yaml").write_text("data: wine_here.yaml\n")
    (examples / "wine_here.yaml").write_text(f"class_path: {DATA}\n")
    assert not names_other_data(["--config", "configs/elsewhere.yaml"])
    assert names_other_data(["--config", "configs/run.yaml"])
    assert names_other_data(["--config", "configs/by_name.yaml"])
    assert not names_other_data(["--config", "configs/digits_run.yaml"])
    monkeypatch.syspath_prepend(examples)  # as python -m finds modules in its folder
    with pytest.raises(SystemExit) as printed:
        fit_main(["--config", "configs/run.yaml", "--print_config"])
    assert printed.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["data"]["class_path"] == DATA
    assert config["data"]["init_args"]["batch_size"] == 8


PLAIN = """
import lightning as L
import torch
from sklearn.datasets import load_iris
from torch.utils.data import DataLoader, TensorDataset, random_split


class IrisData(L.LightningDataModule):
    def __init__(self, batch_size: int = 32):
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage=None):
        x, y = load_iris(return_X_y=True)
        full = TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
        generator = torch.Generator().manual_seed(0)
        self.train, self.val, self.test = random_split(full, [90, 30, 30], generator=generator)

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=self.batch_size)
"""


def test_a_data_module_that_declares_no_shape_is_read_for_it(in_tmp_path: Path) -> None:
    (in_tmp_path / "iris_data.py").write_text(PLAIN)
    result = run("digits.fit", *QUIET, "--data", "iris_data.IrisData", "--trainer.max_epochs", "2")
    assert result.returncode == 0, result.stderr
    last = in_tmp_path / "lightning_logs" / "digits" / "version_0" / "checkpoints" / "last.ckpt"
    hyper_parameters = torch.load(last, weights_only=False)["hyper_parameters"]
    assert (hyper_parameters["num_features"], hyper_parameters["num_classes"]) == (4, 3)
    assert "test/acc" in result.stdout


class SetsItsShapeInSetup(L.LightningDataModule):
    """Features of 4 and labels 0..2, but setup says 6 features and 5 classes."""

    def setup(self, stage: str | None = None) -> None:
        self.num_features, self.num_classes = 6, 5
        self.data = TensorDataset(torch.randn(60, 4), torch.arange(60) % 3)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=20)


def test_the_shape_a_data_modules_setup_sets_is_the_one_read() -> None:
    """No class attributes: what ``setup`` sets is read, whichever is read first."""
    assert num_features_of(SetsItsShapeInSetup()) == 6
    assert num_classes_of(SetsItsShapeInSetup()) == 5


class SplitAtRandom(L.LightningDataModule):
    """A split and shuffled batches drawn from the global generators, which the seed
    sets: reading it ahead for its shape would draw from them too."""

    def setup(self, stage: str | None = None) -> None:
        rows = torch.randn(60, 4, generator=torch.Generator().manual_seed(0))
        self.train, self.val = random_split(TensorDataset(rows, torch.arange(60) % 3), [40, 20])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=10, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=10)

    test_dataloader = val_dataloader


class SplitAtRandomDeclared(SplitAtRandom):
    num_features, num_classes = 4, 3


def test_reading_a_data_module_for_its_shape_leaves_the_seeded_run_as_it_was(
    in_tmp_path: Path,
) -> None:
    """The same seed trained other weights when the shape was left out."""
    runs = in_tmp_path / "lightning_logs" / "digits"
    for data in ("SplitAtRandom", "SplitAtRandomDeclared"):
        fit_main([*QUIET, "--data", f"{__name__}.{data}", "--trainer.max_epochs", "2"])
    read, declared = (
        torch.load(runs / version / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
        for version in ("version_0", "version_1")
    )
    assert read.keys() == declared.keys()
    assert all(torch.equal(read[key], declared[key]) for key in read)


class SquareImages(L.LightningDataModule):
    """Images as an image folder gives them, (batch, 4, 4), not flattened; labels 0..2."""

    def setup(self, stage: str | None = None) -> None:
        generator = torch.Generator().manual_seed(0)
        self.data = TensorDataset(torch.rand(60, 4, 4, generator=generator), torch.arange(60) % 3)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=20)

    val_dataloader = test_dataloader = train_dataloader


@pytest.mark.parametrize(
    "network", [[], ["--model.network", "ConvNet", "--model.network.init_args.channels", "2"]]
)
def test_images_not_flattened_train_with_either_network(network: list[str], in_tmp_path: Path):
    """The MLP took (batch, 16) only: (batch, 4, 4) images failed in its first layer."""
    data = f"{__name__}.SquareImages"
    fit_main([*QUIET, "--data", data, "--trainer.max_epochs", "1", *network])
    last = in_tmp_path / "lightning_logs" / "digits" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["hyper_parameters"]["num_features"] == 16


def test_targets_are_read_batch_by_batch_and_every_batch_is_judged() -> None:
    """Distributions are read for their width, a batch at a time: one batch of another
    width, or of class indices, is refused rather than the first batch's width used."""
    distributions = [torch.full((4, 3), 1 / 3), torch.full((2, 3), 1 / 3)]
    summaries = [label_summary(batch) for batch in distributions]
    assert [tuple(summary.shape) for summary in summaries] == [(0, 3), (0, 3)]
    assert classes_in("Soft", summaries) == 3
    for other in (torch.full((2, 4), 0.25), torch.tensor([0, 1])):
        with pytest.raises(UsageError, match="distributions in some batches"):
            classes_in("Soft", [*summaries, label_summary(other)])
    assert label_summary(torch.tensor([2, 0, 2, 1, 0])).tolist() == [0, 1, 2]
    # A summary holds none of the batch's memory: a view of no rows would keep it all.
    assert label_summary(torch.full((4096, 3), 1 / 3)).untyped_storage().nbytes() == 0


class Endless(L.LightningDataModule):
    """Batches from an IterableDataset that never ends, as a stream of samples may."""

    def train_dataloader(self) -> DataLoader:
        class Stream(torch.utils.data.IterableDataset):
            def __iter__(self):
                # Long, not endless: were it read to the end, the test fails, not hangs.
                yield from ((torch.randn(4), torch.tensor(n % 3)) for n in range(20_000))

        return DataLoader(Stream(), batch_size=10)


class DictBatches(L.LightningDataModule):
    def train_dataloader(self) -> DataLoader:
        return DataLoader([{"x": torch.randn(4), "y": n % 3} for n in range(30)], batch_size=10)


def test_batches_that_cannot_be_read_for_num_classes_are_refused_in_one_line() -> None:
    """A stream would be read for ever; a dict's keys would be taken for its labels."""
    with pytest.raises(UsageError, match="IterableDataset, which may not end: set num_classes"):
        num_classes_of(Endless())
    with pytest.raises(UsageError, match=r"a dict with keys \['x', 'y'\]: they must be"):
        num_classes_of(DictBatches())
    with pytest.raises(UsageError, match=r"a dict with keys \['x', 'y'\]: they must be"):
        num_features_of(DictBatches())


BUGGY = """
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset


class BuggyData(L.LightningDataModule):
    def setup(self, stage=None):
        rows = np.loadtxt(open("rows.csv"))  # not there: a FileNotFoundError here
        self.train = TensorDataset(torch.from_numpy(rows), torch.zeros(2, dtype=torch.long))

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=2)
"""


def test_a_bug_in_your_data_module_keeps_its_traceback(in_tmp_path: Path) -> None:
    """Read for its shape while the CLI builds, its setup must not pass for a bad value."""
    (in_tmp_path / "buggy_data.py").write_text(BUGGY)
    result = run("digits.fit", *QUIET, "--data", "buggy_data.BuggyData")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" in result.stderr
    assert 'buggy_data.py", line 10, in setup' in result.stderr
    assert "BuggyData failed while it was read for num_features" in result.stderr
    # Its last line names the file, as the error itself does (its repr would not).
    assert "No such file or directory: 'rows.csv'" in result.stderr.strip().splitlines()[-1]
    assert not (in_tmp_path / "lightning_logs").exists()


LABELLED = """
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class Labelled(L.LightningDataModule):
    def setup(self, stage=None):
        self.data = list(zip(torch.randn(60, 4), LABELS))

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=20)

    val_dataloader = test_dataloader = train_dataloader
"""


LABEL_CASES = [
    (
        "torch.arange(60) % 3 + 1",  # 1..3, as many data sets number their classes
        "error: Labelled's training labels run 1..3, and no sample has [0]: they must run "
        "from 0 to the number of classes - 1 (sklearn's LabelEncoder makes them so); set "
        "num_classes only where a class has no training sample",
    ),
    (
        "(torch.arange(60) % 3).float()",
        "error: Labelled's training labels are torch.float32: class indices must be "
        "int64 integers from 0 (torch.as_tensor(labels, dtype=torch.int64))",
    ),
    (
        # Read from a file where one row says 3.0: the batches after the first are floats.
        "[0, 1, 2] * 10 + [0.0, 1.0, 2.0] * 10",
        "error: Labelled's training labels are torch.float32 in some batches: class "
        "indices must be int64 integers from 0 (torch.as_tensor(labels, dtype=torch.int64))",
    ),
    (
        '["cat", "dog", "eel"] * 20',
        "error: Labelled's training labels are a tuple of str, not a tensor: class indices "
        "must be integers from 0 (sklearn's LabelEncoder makes them so)",
    ),
    (
        "(torch.arange(60) % 3)[:, None]",  # a column, as df[["label"]].values is
        "error: Labelled's training labels have the shape (batch, 1): one class index per "
        "sample, of the shape (batch,), or a distribution of floats over the classes per "
        "sample, (batch, classes)",
    ),
    (
        "(torch.arange(60) % 3).float()[:, None]",  # np.loadtxt's column, as floats
        "error: Labelled's training labels have the shape (batch, 1): one class index per "
        "sample, of the shape (batch,), or a distribution of floats over the classes per "
        "sample, (batch, classes)",
    ),
    (
        "(torch.arange(60) % 3)[:, None, None]",
        "error: Labelled's training labels have the shape (batch, 1, 1): one class index "
        "per sample, of the shape (batch,), or a distribution of floats over the classes "
        "per sample, (batch, classes)",
    ),
    (
        "(torch.arange(60) % 3).int()",  # NumPy's default integer on Windows
        "error: Labelled's training labels are torch.int32: class indices must be "
        "int64 integers from 0 (torch.as_tensor(labels, dtype=torch.int64))",
    ),
    (
        "torch.arange(60) % 3, torch.ones(60)",  # zipped: batches of three tensors
        "error: Labelled's training batches are a list of 3: they must be (features, labels) pairs",
    ),
]
LABEL_CASE_NAMES = [
    "one-based",
    "float",
    "float-later",
    "strings",
    "column",
    "float-column",
    "3-d",
    "int32",
    "triples",
]


class Labelled(L.LightningDataModule):
    """LABELLED in memory: its labels a Python expression, zipped with random features."""

    def __init__(self, labels: str) -> None:
        super().__init__()
        self.labels = labels

    def train_dataloader(self) -> DataLoader:
        pairs = eval(f"zip(torch.randn(60, 4), {self.labels})", {"torch": torch})
        return DataLoader(list(pairs), batch_size=20)


@pytest.mark.parametrize(("labels", "line"), LABEL_CASES, ids=LABEL_CASE_NAMES)
def test_labels_that_are_not_class_indices_from_0_are_refused_with_their_reason(
    labels: str, line: str
) -> None:
    """Read for num_classes, labels 1..3 made a network of four classes, one unused."""
    with pytest.raises(UsageError) as refused:
        num_classes_of(Labelled(labels))
    assert f"error: {refused.value}" == line


@pytest.mark.parametrize(
    ("labels", "line"),
    [LABEL_CASES[LABEL_CASE_NAMES.index(name)] for name in ("one-based", "strings")],
    ids=["one-based", "strings"],
)
def test_labels_that_are_not_class_indices_from_0_are_refused_in_one_line(
    in_tmp_path: Path, labels: str, line: str
) -> None:
    """The command's own words: one line, exit 2, nothing written (strings are found in
    a jsonargparse link, whose words were said before)."""
    (in_tmp_path / "labelled.py").write_text(LABELLED.replace("LABELS", labels))
    result = run("digits.fit", *QUIET, "--data", "labelled.Labelled")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [line]
    assert not (in_tmp_path / "lightning_logs").exists()


@pytest.mark.slow
def test_a_data_class_that_cannot_be_imported_is_said_with_the_reason(examples: Path) -> None:
    (examples / "needs_a_package.py").write_text("import not_installed_here\n")
    (examples / "raises.py").write_text("1 / 0\n")
    (examples / "empty.py").write_text("")
    for data, line in (
        (
            "needs_a_package.MyData",
            "error: --data needs_a_package.MyData: needs_a_package imports "
            "'not_installed_here', which is not installed (pip install the package that "
            "provides it)",
        ),
        (
            "nowhere.MyData",
            "error: --data nowhere.MyData: no module 'nowhere' here; run from the folder "
            "that holds it, or install its package",
        ),
        ("empty.MyData", "error: --data empty.MyData: empty has no 'MyData'"),
        (
            "empty.py",
            "error: --data empty.py is a file; name the class in it: --data empty.ClassName",
        ),
        (
            "examples.wine",
            "error: --data examples.wine is a module; name the class in it: "
            "--data examples.wine.ClassName",
        ),
        (
            "empty",
            "error: --data empty is a module; name the class in it: --data empty.ClassName",
        ),
        ("examples", FOLDER_LINE.format(flag="--data", name="examples")),
        ("missing.yaml", "error: Parser key \"data\": Unable to load config 'missing.yaml'"),
    ):
        refused = run("digits.fit", "--data", data)
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines() == [line]
    # A module that fails for another reason has a bug: its traceback is shown.
    failed = run("digits.fit", "--data", "raises.MyData")
    assert failed.returncode == 1
    assert "Traceback" in failed.stderr and "ZeroDivisionError" in failed.stderr
    assert not (examples / "lightning_logs").exists()


NEEDS_A_CLASS = (
    "error: {flag} needs a class: {flag} module.ClassName (digits.DigitsDataModule is "
    "this project's)"
)
HELP_LINE = NEEDS_A_CLASS.format(flag="--data.help")
DEFAULT_LINE = (
    "error: --data {} is this project's data module, used when --data is left out: leave "
    "it out and give its settings as --data.NAME VALUE (in a config file, under data: "
    "without class_path)"
)
FOLDER_LINE = (
    "error: {flag} {name} is a folder, not a data module class: name the class by its "
    "module, {flag} module.ClassName (a folder your class reads is one of its settings, "
    "--data.NAME {name})"
)


@pytest.mark.parametrize(
    ("words", "line"),
    [
        (
            ["--data.help", "empty"],
            "error: --data.help empty is a module; name the class in it: "
            "--data.help empty.ClassName",
        ),
        (
            ["--data.help=empty.py"],
            "error: --data.help empty.py is a file; name the class in it: "
            "--data.help empty.ClassName",
        ),
        (
            ["--data.help", "nowhere.MyData"],
            "error: --data.help nowhere.MyData: no module 'nowhere' here; run from the "
            "folder that holds it, or install its package",
        ),
        (
            ["--data", "MyOwnData"],
            "error: --data MyOwnData: no data module class of that name is imported; name "
            "it by its module: --data module.MyOwnData",
        ),
        (
            ["--data.help", "MyOwnData"],
            "error: --data.help MyOwnData: no data module class of that name is imported; "
            "name it by its module: --data.help module.MyOwnData",
        ),
        (["--data", "./examples"], FOLDER_LINE.format(flag="--data", name="./examples")),
        (["--data", "examples/"], FOLDER_LINE.format(flag="--data", name="examples/")),
        (["--data.help", "examples"], FOLDER_LINE.format(flag="--data.help", name="examples")),
        (["--data", "."], FOLDER_LINE.format(flag="--data", name=".")),
        (["--data", ".."], FOLDER_LINE.format(flag="--data", name="..")),
        (
            ["--data", "2nd.MyData"],
            "error: --data 2nd.MyData is not a class path: name the class by its module, "
            "--data module.ClassName",
        ),
        (["--data.help"], HELP_LINE),
        (["--data.help="], HELP_LINE),
        (["--data.help", "--trainer.max_epochs", "1"], HELP_LINE),
        (["--data.help=", "examples.wine.WineDataModule"], HELP_LINE),
        (["--data", "--trainer.max_epochs", "1"], NEEDS_A_CLASS.format(flag="--data")),
        (["--data", "digits.DigitsDataModule"], DEFAULT_LINE.format("digits.DigitsDataModule")),
        (
            ["--data=digits.data.DigitsDataModule", "--data.batch_size", "32"],
            DEFAULT_LINE.format("digits.data.DigitsDataModule"),
        ),
        (
            ["--config", "default.yaml"],
            "error: default.yaml, under data: class_path: digits.DigitsDataModule is this "
            "project's data module, used when --data is left out: leave it out and give its "
            "settings as --data.NAME VALUE (in a config file, under data: without class_path)",
        ),
        (
            ["--data", "digits.data"],
            "error: --data digits.data is a module; name the class in it: "
            "--data digits.data.ClassName",
        ),
        (
            ["--data", "examples.wine.load_wine"],
            "error: --data examples.wine.load_wine is a function, not a LightningDataModule: "
            "name the data module's class, --data module.ClassName",
        ),
        (
            ["--data", "digits.model.DigitsClassifier"],
            "error: --data digits.model.DigitsClassifier is another class, not a "
            "LightningDataModule: name the data module's class, --data module.ClassName",
        ),
        (
            ["--config", "bare.yaml"],
            "error: bare.yaml, under data: class_path: MyOwnData: no data module class of "
            "that name is imported; name it by its module: class_path: module.MyOwnData",
        ),
        (
            ["--data", "data_only.yaml"],
            "error: data_only.yaml: class_path: MyOwnData: no data module class of that "
            "name is imported; name it by its module: class_path: module.MyOwnData",
        ),
        (
            ["-c", "folder.yaml"],
            "error: folder.yaml, under data: class_path: examples is a folder, not a data "
            "module class: name the class by its module, class_path: module.ClassName (a "
            "folder your class reads is one of its settings, init_args: {NAME: examples})",
        ),
    ],
)
def test_a_data_class_misnamed_is_said_in_one_line(
    words: list[str], line: str, examples: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """``--data.help`` is read as ``--data`` is, and a class without its module or a
    folder's path is told how to name a class (jsonargparse said "expected one of
    [LightningDataModule, NoneType]" or "Expected a dot import path string"). A config
    file's class is named by its file and key (it was said as ``--data``, never typed)."""
    (examples / "empty.py").write_text("")
    (examples / "default.yaml").write_text(
        "data:\n  class_path: digits.DigitsDataModule\n  init_args:\n    batch_size: 32\n"
    )
    (examples / "bare.yaml").write_text("data:\n  class_path: MyOwnData\n")
    (examples / "data_only.yaml").write_text("class_path: MyOwnData\n")
    (examples / "folder.yaml").write_text("data:\n  class_path: examples\n")
    monkeypatch.syspath_prepend(examples)  # as python -m finds modules in its folder
    with pytest.raises(SystemExit) as stopped:
        fit_main(words)
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [line]
    assert not (examples / "lightning_logs").exists()
