"""Every shipped config parses and trains; configs/default.yaml is exactly the defaults."""

from __future__ import annotations

import io
import math
import sys
import warnings
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch
import yaml

from digits import DigitsDataModule
from digits.cli import DigitsCLI
from digits.fit import main
from tests.conftest import QUIET, needs_gpu, scalars

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GPU_CONFIGS = {"gpu.yaml"}
# DDP launches one more process per device by re-running the command line, so these
# run as real commands (tests/test_trust.py), not inside pytest's process.
MULTI_PROCESS_CONFIGS = {"ddp_cpu.yaml"}


def config_params() -> list:
    return [
        pytest.param(
            path,
            marks=[pytest.mark.gpu, needs_gpu] if path.name in GPU_CONFIGS else [],
            id=path.name,
        )
        for path in sorted(CONFIGS.glob("*.yaml"))
        if path.name not in MULTI_PROCESS_CONFIGS
    ]


def printed_config(*args: str) -> dict:
    output = io.StringIO()
    with redirect_stdout(output), pytest.raises(SystemExit) as exit_info:
        DigitsCLI(run=False, args=[*args, "--print_config"])
    assert exit_info.value.code in (None, 0)
    return yaml.safe_load(output.getvalue())


@pytest.mark.parametrize("config", config_params())
def test_config_trains_with_fast_dev_run(config: Path, tmp_path: Path):
    summary = main(["--config", str(config), *QUIET, "--trainer.fast_dev_run", "true"])
    # One test batch of 128 images, nothing written.
    assert summary.test_acc * 128 == pytest.approx(round(summary.test_acc * 128), abs=1e-3)
    assert list(tmp_path.iterdir()) == []


def test_configs_compose_later_files_and_then_the_command_line_win(tmp_path: Path):
    tweaks = tmp_path / "tweaks.yaml"
    tweaks.write_text("model:\n  lr: 0.01\ndata:\n  transforms: []\ntrainer:\n  max_epochs: 7\n")
    config = printed_config(
        *("--config", str(CONFIGS / "best.yaml"), "--config", str(tweaks)),
        *("--trainer.max_epochs", "2"),
    )
    assert config["model"]["network"]["class_path"] == "digits.networks.ConvNet"  # best.yaml
    assert config["model"]["lr_schedule"] == "onecycle"  # best.yaml, untouched by tweaks
    assert config["model"]["lr"] == 0.01 and config["data"]["transforms"] == []  # tweaks
    assert config["trainer"]["max_epochs"] == 2  # the command line
    composed = ["--config", str(CONFIGS / "best.yaml"), "--config", str(tweaks)]
    summary = main([*QUIET, *composed, "--trainer.max_epochs", "2"])
    saved = yaml.safe_load((Path(summary.log_dir) / "config.yaml").read_text())
    assert saved["model"] == config["model"] and saved["data"] == config["data"]
    assert saved["trainer"]["max_epochs"] == 2
    assert len(scalars(Path(summary.log_dir), "val/acc")) == 2


def test_default_yaml_is_every_default_written_out():
    assert yaml.safe_load((CONFIGS / "default.yaml").read_text()) == printed_config()


def test_default_yaml_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert printed_config("--config", str(CONFIGS / "default.yaml")) == printed_config()
    # ... and trains to the same numbers, bit for bit on the CPU.
    short = [*QUIET, "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu"]
    without = main(short)
    with_default = main(["--config", str(CONFIGS / "default.yaml"), *short])
    assert with_default.test_acc == without.test_acc
    assert scalars(Path(with_default.log_dir), "train/loss") == scalars(
        Path(without.log_dir), "train/loss"
    )


@pytest.mark.gpu
@needs_gpu
def test_gpu_config_trains_on_the_gpu():
    summary = main(["--config", str(CONFIGS / "gpu.yaml"), *QUIET, "--trainer.max_epochs", "5"])
    assert summary.test_acc > 0.5
    sys.stdout.write(f"gpu test/acc after 5 epochs: {summary.test_acc:.4f}\n")


def host_waits(block: Callable[[], object]) -> int:
    """How often ``block`` made the host wait for the GPU, by torch's sync debug mode."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            block()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(warning.message) for warning in caught)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize(
    "more",
    [
        pytest.param([], id="tutorial"),
        # A transform changes every training batch on the device (configs/best.yaml's).
        pytest.param(
            ["--data.transforms", "[{class_path: digits.people.augment.Shift}]"],
            id="transform",
        ),
    ],
)
def test_training_steps_do_not_wait_for_the_gpu(more: list[str]):
    """No host synchronisation per training step: waits must grow slower than the steps.

    torch's sync debug mode warns at every operation that makes the host wait for the
    GPU. Epoch-level work (metrics, pictures) may wait, as often at any batch size, and
    so may each validation and test batch (a few per epoch); a smaller batch size adds
    training steps, so a wait inside a training step shows at least once per added step.
    Checkpoints are off: how often the best one is saved depends on the run.
    """
    # The counter counts: reading a value back from the GPU is a wait, every time.
    assert host_waits(lambda: [torch.ones(1, device="cuda").item() for _ in range(5)]) >= 5
    epochs = 3

    def fit(batch_size: int) -> None:
        main(
            [
                *("--config", str(CONFIGS / "gpu.yaml"), *QUIET),
                *("--trainer.max_epochs", str(epochs), "--data.batch_size", str(batch_size)),
                *("--checkpoint.every_n_epochs", "0", "--last_checkpoint.every_n_epochs", "0"),
                *more,
            ]
        )

    train_images = len(DigitsDataModule().splits.indices["train"])
    added_steps = epochs * (math.ceil(train_images / 16) - math.ceil(train_images / 128))
    few_steps, many_steps = host_waits(lambda: fit(128)), host_waits(lambda: fit(16))
    sys.stdout.write(f"host waits: {few_steps} at batch 128, {many_steps} at batch 16\n")
    assert many_steps - few_steps < added_steps
