"""One rule for every entry point: a mistake is one line and exit 2, a bug its traceback.

A mistake is found while the command line is read and the objects are built. Anything
raised once training, predicting or exporting runs is a bug and keeps its traceback,
even when it is a ``ValueError`` like most of the user's mistakes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from digits.__main__ import main as digits_main
from digits.fit import main as fit_main
from digits.reading.export import main as export_main
from digits.reading.predict import main as predict_main
from digits.reading.trained import TrainedNetwork
from tests.conftest import QUIET


class BreaksOnThirdBatch(nn.Module):
    """A user's own network with a bug: its third forward pass raises ValueError."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.layer = nn.Linear(num_features, num_classes)
        self.calls = 0

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 3:
            raise ValueError("the third batch broke the user's network")
        return self.layer(pixels)


BROKEN = ["--model.network", "tests.test_errors.BreaksOnThirdBatch", *QUIET]
BROKEN += ["--trainer.num_sanity_val_steps", "0", "--trainer.max_epochs", "1"]


@pytest.mark.parametrize("command", ["digits fit", "digits.fit"])
def test_a_bug_in_training_keeps_its_traceback(command: str, capsys):
    main = (lambda args: digits_main(["fit", *args])) if command == "digits fit" else fit_main
    with pytest.raises(ValueError, match="the third batch broke"):
        main(BROKEN)
    assert "error:" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["digits fit", "digits.fit"])
def test_a_mistake_while_building_is_still_one_line(command: str, capsys):
    main = (lambda args: digits_main(["fit", *args])) if command == "digits fit" else fit_main
    with pytest.raises(SystemExit) as stopped:
        main([*QUIET, "--data.batch_size", "0"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == "error: data.batch_size must be at least 1, got 0"


@pytest.mark.parametrize("command", ["fit", "validate", "test", "predict", "digits.fit"])
def test_a_seed_numpy_cannot_take_is_one_line_before_anything_is_written(command: str, capsys):
    # LightningCLI seeds between reading the command line and building the objects.
    main = fit_main if command == "digits.fit" else (lambda args: digits_main([command, *args]))
    with pytest.raises(SystemExit) as stopped:
        main([*QUIET, "--seed_everything", "-1"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: seed_everything must be true, false or a whole number 0 to 4294967295, got -1"
    )
    assert not Path("lightning_logs").exists()


def test_a_callbacks_own_complaint_is_the_line_not_the_union_it_was_tried_against(capsys):
    # jsonargparse tries --trainer.callbacks against a list, a Callback and None, and lists
    # why each failed: the one line is the class's own reason, not the types it tried.
    with pytest.raises(SystemExit) as stopped:
        fit_main([*QUIET, "--trainer.callbacks+=lightning.pytorch.callbacks.EarlyStopping"])
    assert stopped.value.code == 2
    line = capsys.readouterr().err.strip()
    assert line == (
        "error: Problem with given class_path 'lightning.pytorch.callbacks.EarlyStopping': "
        "the following arguments are required: monitor"
    )
    # A bad value for one of a callback's own settings: the setting and the value.
    with pytest.raises(SystemExit):
        fit_main(
            [
                *QUIET,
                "--trainer.callbacks+=digits.training.familiar.DeclineUnfamiliar",
                "--trainer.callbacks.share",
                "x",
            ]
        )
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith('Parser key "share": Expected a float. Got value: x')
    )
    assert not Path("lightning_logs").exists()


def test_a_bug_while_predicting_keeps_its_traceback(
    trained: Path, tmp_path: Path, monkeypatch, capsys
):
    rows = tmp_path / "rows.npy"
    np.save(rows, np.zeros((2, 64), dtype=np.float32))

    def broken(*args, **kwargs):
        raise ValueError("a bug in the reading")

    monkeypatch.setattr(TrainedNetwork, "readings", broken)
    with pytest.raises(ValueError, match="a bug in the reading"):
        predict_main(["--ckpt_path", str(trained), str(rows)])
    assert "error:" not in capsys.readouterr().err
    # A mistake is still one line: a checkpoint that is not there.
    with pytest.raises(SystemExit) as stopped:
        predict_main(["--ckpt_path", str(tmp_path / "missing.ckpt"), str(rows)])
    assert stopped.value.code == 2


def test_a_bug_while_exporting_keeps_its_traceback(
    trained: Path, tmp_path: Path, monkeypatch, capsys
):
    def broken(*args, **kwargs):
        raise ValueError("a bug in the exporter")

    monkeypatch.setattr(torch.jit, "trace", broken)
    args = ["--ckpt_path", str(trained), "--format", "torchscript"]
    with pytest.raises(ValueError, match="a bug in the exporter"):
        export_main([*args, "--output", str(tmp_path / "model.pt")])
    assert "error:" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        export_main([*args, "--output", str(tmp_path / "rows.npy"), "--format", "zip"])
    assert stopped.value.code == 2


def test_an_image_claiming_20000x20000_pixels_is_that_files_error_in_predict(
    trained: Path, tmp_path: Path, capsys
):
    """Pillow's DecompressionBombError is no ValueError: a file's error, not a traceback."""
    from tests.test_serve import png_claiming

    bomb, rows = tmp_path / "bomb.png", tmp_path / "rows.npy"
    bomb.write_bytes(png_claiming(20000, 20000))
    np.save(rows, np.zeros((1, 64), dtype=np.float32))
    with pytest.raises(SystemExit) as stopped:
        predict_main(["--ckpt_path", str(trained), str(bomb), str(rows)])
    assert stopped.value.code == 1  # some files could not be read
    out, err = capsys.readouterr()
    assert err.strip() == f"{bomb}: error: the image is larger than 4096x4096"
    assert out.startswith(f"{rows}: ")
