"""Settings that moved: earlier configs and checkpoints still run, an old flag names the new one.

The data module's feature flags became objects given by class path (``data.sources``,
``data.transforms``), and the weight of a non-digit's loss moved from the model to the
non-digits. A config or checkpoint written before reads as today's; an old flag typed on
the command line is one line and exit 2, before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from digits.__main__ import main as digits_main
from digits.fit import main as fit_main
from digits.reading.checkpoint import write_atomically
from digits.reading.moved_settings import NEW_FLAGS
from tests.conftest import QUIET, scalars

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# The network and optimizer of an earlier configs/best.yaml, unchanged by the move.
EARLIER_MODEL = """
model:
  network:
    class_path: digits.networks.ConvNet
    init_args: {channels: 32, hidden_size: 128, dropout: 0.25}
  lr: 0.003
  weight_decay: 0.0001
  lr_schedule: onecycle
"""
# That configs/best.yaml as it was written before the settings moved.
OLD_BEST = (
    EARLIER_MODEL
    + """  outlier_weight: 0.5
data:
  scale: unit
  shift: 1
  drawn: true
  dataset_repeats: 5
  outliers: 1000
  augment: 0.0
trainer:
  max_epochs: 36
  logger: {init_args: {name: best}}
  callbacks:
    - class_path: lightning.pytorch.callbacks.LearningRateMonitor
      init_args: {logging_interval: epoch}
checkpoint:
  monitor: val/drawn_acc
  filename: epoch{epoch:03d}-drawn_acc{val/drawn_acc:.4f}
"""
)
# The same recipe in today's settings.
OLD_BEST_TODAY = (
    EARLIER_MODEL
    + """data:
  scale: unit
  repeats: 5
  sources:
    - class_path: digits.people.pen_digits.PenDigits
    - class_path: digits.people.non_digits.NonDigits
      init_args: {count: 1000, weight: 0.5}
  transforms:
    - class_path: digits.people.augment.Shift
      init_args: {pixels: 1}
"""
)


def printed_config(capsys: pytest.CaptureFixture, *args: str) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        fit_main([*args, "--print_config"])
    assert exit_info.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_a_config_written_before_reads_as_todays(tmp_path: Path, capsys):
    old = tmp_path / "old_best.yaml"
    old.write_text(OLD_BEST)
    todays_form = tmp_path / "todays_form.yaml"
    todays_form.write_text(OLD_BEST_TODAY)
    before = printed_config(capsys, "--config", str(old))
    today = printed_config(capsys, "--config", str(todays_form))
    assert before["data"] == today["data"] and before["model"] == today["model"]
    assert [source["class_path"] for source in today["data"]["sources"]] == [
        "digits.people.pen_digits.PenDigits",
        "digits.people.non_digits.NonDigits",
    ]


def test_an_old_tweak_file_says_wholly_which_transforms_it_trains_with(tmp_path: Path, capsys):
    """``shift: 0`` over best.yaml meant no shifts: it still does."""
    tweaks = tmp_path / "tweaks.yaml"
    tweaks.write_text("data:\n  shift: 0\n")
    best = str(CONFIGS / "best.yaml")
    config = printed_config(capsys, "--config", best, "--config", str(tweaks))
    assert config["data"]["transforms"] == [] and len(config["data"]["sources"]) == 2


@pytest.mark.parametrize("flag", sorted(NEW_FLAGS))
def test_an_old_flag_is_one_line_naming_the_new_one(flag: str, tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        fit_main([f"--{flag}", "1"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: --{flag} is now ")
    assert not (tmp_path / "lightning_logs").exists()


def test_a_checkpoint_with_the_old_data_settings_validates_as_the_new_one(
    trained_drawn: Path, tmp_path: Path
):
    """The drawn run's checkpoint, rewritten with the settings as they were kept before."""
    checkpoint = torch.load(trained_drawn, map_location="cpu", weights_only=True)
    data = checkpoint["datamodule_hyper_parameters"]
    pen_digits, non_digits = (source["class_path"] for source in data["sources"])
    assert (pen_digits, non_digits) == (
        "digits.people.pen_digits.PenDigits",
        "digits.people.non_digits.NonDigits",
    )
    outliers = data["sources"][1]["init_args"]["count"]
    for key in ("sources", "transforms"):
        del data[key]
    data.update(drawn=True, dataset_repeats=data.pop("repeats"), outliers=outliers, shift=0)
    checkpoint["hyper_parameters"]["outlier_weight"] = 0.5
    del checkpoint["hyper_parameters"]["eval_sets"]
    old = tmp_path / "old.ckpt"
    write_atomically(checkpoint, old)
    # It does not name the pen digits on the command line: it takes them from its file,
    # and scores the drawn validation digits as the run did at that epoch.
    digits_main(["validate", *QUIET, "--ckpt_path", str(old)])
    ((_, validated),) = scalars(tmp_path / "lightning_logs/digits/version_0", "val/drawn_acc")
    during_the_run = dict(scalars(trained_drawn.parent.parent, "val/drawn_acc"))
    assert validated == during_the_run[checkpoint["global_step"] - 1]
