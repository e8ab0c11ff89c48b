"""The command line as a user meets it: help, mistakes, and the LightningCLI subcommands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from digits.__main__ import main as digits_main
from digits.dataset import DigitsSplits
from digits.fit import main as fit_main
from digits.reading.sure import Calibration
from digits.training.summary import FitSummary
from tests.conftest import QUIET, figures_by_loader, scalars


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_help_exits_zero_and_lists_the_project_options():
    result = run_module("digits.fit", "--help")
    assert result.returncode == 0
    for option in (
        "--model.lr",
        "--data.split_seed",
        "--checkpoint.monitor",
        "--trainer.max_epochs",
    ):
        assert option in result.stdout


def test_an_unknown_flag_is_one_line_and_exit_code_2(tmp_path: Path):
    result = run_module("digits.fit", "--no-such-flag", "1")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unrecognized arguments: --no-such-flag 1"
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize("command", [["digits.fit"], ["digits", "fit"]], ids=" ".join)
def test_both_fit_commands_test_the_best_checkpoint_and_print_no_warning(command, tmp_path):
    result = run_module(*command, "--trainer.max_epochs", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "warn" not in output.lower(), output
    assert "Tip:" not in output  # Lightning's advertisement for a cloud logging service
    assert "GPU available" in output  # while its lines about this run stay
    run = tmp_path / "lightning_logs/digits/version_0"
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    ((_, before),), ((_, after),) = scalars(run, "test/ece_unscaled"), scalars(run, "test/ece")
    ((_, temperature),) = scalars(run, "calibration/temperature")
    ((_, threshold),) = scalars(run, "calibration/threshold")
    assert scalars(run, "calibration/val_coverage")[0][1] == 0
    assert result.stdout.splitlines()[-7:] == [
        f"best val/acc  {scalars(run, 'val/acc_best')[-1][1]:.4f}",
        f"test/acc      {scalars(run, 'test/acc')[0][1]:.4f}  (the best checkpoint)",
        f"test/ece      {before:.4f} -> {after:.4f}, temperature {temperature:.3f}",
        # Nothing is read surely enough after two epochs: 0.0% of none wrong said nothing.
        f"sure          probability >= {threshold:.4f}: none of the validation readings",
        f"checkpoint    {best.relative_to(tmp_path)}",
        "logs          lightning_logs/digits/version_0",
        "to look:      tensorboard --logdir lightning_logs",
    ]


def test_the_summary_says_the_share_of_sure_readings_and_how_many_were_wrong():
    """A real run's line, with none sure, is checked above; here one with some sure."""
    fitted = Calibration(
        temperature=0.7,
        threshold=0.93,
        coverage=0.881,
        sure_error=0.004,
        nll_before=0.2,
        nll_after=0.1,
    )
    summary = FitSummary(0.96, None, None, None, None, calibration=fitted)
    assert summary.calibration_lines() == [
        "sure          probability >= 0.9300: 88.1% of the validation readings, 0.4% of those wrong"
    ]


def test_help_says_what_each_subcommand_does():
    result = run_module("digits", "--help")
    assert result.returncode == 0
    # Usage names the command to type, not the file Python ran (__main__.py, fit.py).
    assert result.stdout.startswith("usage: python -m digits [-c CONFIG] {fit,")
    fit_help = run_module("digits.fit", "--help")
    assert fit_help.stdout.startswith("usage: python -m digits.fit [-c CONFIG]")
    assert "fit: train, then test the best checkpoint" in " ".join(result.stdout.split())
    for subcommand in ("validate", "test", "predict"):
        assert subcommand in result.stdout


@pytest.mark.parametrize(
    ("subcommand", "nested"),
    [
        ("fit", ["--data.help", "digits.DigitsDataModule"]),
        ("test", ["--model.network.help", "ConvNet"]),
        # By its path: bare, MLP is ambiguous once kornia (which has two) is imported.
        ("predict", ["--model.network.help", "digits.networks.MLP"]),
    ],
)
def test_nested_help_under_a_subcommand_names_it(subcommand: str, nested: list[str], capsys):
    """Its usage said ``python -m digits [...]``, a command that does not take the flags
    it lists; nested help builds its parser from the subcommand parser's class alone."""
    with pytest.raises(SystemExit) as stopped:
        digits_main([subcommand, *nested])
    assert stopped.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith(f"usage: python -m digits {subcommand} [--"), usage[:200]
    assert f"Help for {nested[0]}=" in usage


@pytest.mark.parametrize(
    "after",
    [["--config", "plain.yaml"], ["--trainer.max_epochs", "3"], ["--model.lr=0.01"]],
    ids=["config", "trainer-flag", "model-setting"],
)
@pytest.mark.parametrize(
    "nested",
    [["--data.help", "digits.DigitsDataModule"], ["--model.network.help=ConvNet"]],
    ids=["data", "network"],
)
def test_nested_help_ignores_what_follows_it_as_help_does(
    nested: list[str], after: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    """Help added at the front of a command line said "unrecognized arguments: --config
    plain.yaml": jsonargparse reads what follows a nested help flag with the class's own
    parser. Moved last, the rest is read first, as for --help, and nothing is written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plain.yaml").write_text("trainer:\n  max_epochs: 3\n")
    with pytest.raises(SystemExit) as stopped:
        fit_main([*nested, *after])
    assert stopped.value.code == 0, capsys.readouterr().err
    assert f"Help for {nested[0].split('=')[0]}=" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == [tmp_path / "plain.yaml"]


def test_nested_help_of_a_class_inside_another_still_chains(capsys):
    """jsonargparse's help of a class given to a class (a data module's transform) follows
    the outer one; moving help flags last keeps them together, in order."""
    with pytest.raises(SystemExit) as stopped:
        fit_main(
            [
                "--data.help",
                "digits.DigitsDataModule",
                "--trainer.max_epochs",
                "3",
                "--data.transforms.help",
                "digits.people.augment.Shift",
            ]
        )
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert "Help for --data.transforms.help=digits.people.augment.Shift" in out
    assert "--data.transforms.pixels PIXELS" in out


def test_subcommands_fit_then_test_and_predict_a_checkpoint(tmp_path: Path, capsys):
    fitted = digits_main(["fit", *QUIET, "--trainer.max_epochs", "2"])
    run = tmp_path / "lightning_logs/digits/version_0"
    assert fitted.summary.test_acc == scalars(run, "test/acc")[0][1]
    assert Path(fitted.summary.checkpoint).parent == Path(
        "lightning_logs/digits/version_0/checkpoints"
    )
    checkpoint = run / "checkpoints/last.ckpt"

    digits_main(["test", *QUIET, "--ckpt_path", str(checkpoint)])
    tested = scalars(tmp_path / "lightning_logs/digits/version_1", "test/acc")
    # last.ckpt is the best here too (two epochs, still learning): the same score.
    assert tested == [(0, pytest.approx(fitted.summary.test_acc))]

    digits_main(["validate", *QUIET, "--ckpt_path", str(checkpoint)])
    validated = scalars(tmp_path / "lightning_logs/digits/version_2", "val/acc")
    assert [value for _, value in validated] == [pytest.approx(fitted.summary.best_score)]

    predicted = digits_main(["predict", *QUIET, "--ckpt_path", str(checkpoint)])
    digits = torch.cat([batch["digit"] for batch in predicted.trainer.predict_loop.predictions])
    labels = torch.as_tensor(DigitsSplits().arrays("test")[1])
    assert (digits == labels).float().mean().item() == pytest.approx(fitted.summary.test_acc)
    sure = torch.cat([batch["sure"] for batch in predicted.trainer.predict_loop.predictions])
    said = capsys.readouterr().out.strip().splitlines()[-1]
    assert said == (
        f"predict: read {len(labels)} images, {int(sure.sum())} of them sure "
        f"({sure.float().mean().item():.1%})"
    )


def test_test_and_validate_list_each_sets_figures_under_its_own_loader(
    trained_drawn: Path, tmp_path: Path, monkeypatch, capfd
):
    """Lightning's table lists a value logged at an epoch's end under every loader, so the
    data set's figures stood under the drawn digits' loader too, and theirs under its."""
    monkeypatch.chdir(tmp_path)
    capfd.readouterr()
    for subcommand, stage in (("test", "test"), ("validate", "val")):
        digits_main([subcommand, *QUIET, "--ckpt_path", str(trained_drawn)])
        columns = figures_by_loader(capfd.readouterr().out, stage)
        own = {"acc", "loss", "ece"} | ({"ece_unscaled"} if stage == "test" else set())
        expected = {f"{stage}/{name}": [0] for name in own}
        expected |= {f"{stage}/drawn_{name}": [1] for name in own}
        assert columns == expected


def test_test_and_validate_say_the_folder_their_scores_went_to(
    trained: Path, tmp_path: Path, capfd
):
    """Each writes its scores to a run folder of its own, which it named nowhere."""
    capfd.readouterr()
    for number, (subcommand, stage) in enumerate((("test", "test"), ("validate", "val"))):
        digits_main([subcommand, *QUIET, "--ckpt_path", str(trained)])
        folder = Path("lightning_logs", "digits", f"version_{number}")
        assert capfd.readouterr().out.splitlines()[-1] == f"logs          {folder}"
        assert scalars(tmp_path / folder, f"{stage}/acc")


def test_a_checkpoint_is_required_to_score_or_use_as_a_whole_command(tmp_path: Path):
    """Without --ckpt_path Lightning would score or use the untrained network, and exit 0."""
    result = run_module("digits", "test")
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: python -m digits test needs --ckpt_path")
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize(
    ("subcommand", "given"),
    [("validate", []), ("test", []), ("predict", []), ("test", ["--ckpt_path", ""])],
)
def test_a_checkpoint_is_required_to_score_or_use(subcommand, given, tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as stopped:
        digits_main([subcommand, *given])
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: python -m digits {subcommand} needs --ckpt_path")
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize("command", ["digits fit", "digits.fit"])
@pytest.mark.parametrize(
    "flags",
    [
        ["--optimizer", "SGD", "--optimizer.lr", "0.1"],
        ["--lr_scheduler", "StepLR", "--lr_scheduler.step_size", "5"],
    ],
)
def test_lightnings_optimizer_flags_are_refused_for_the_models_own(
    flags, command: str, tmp_path: Path, capsys
):
    """LightningCLI would train with them while the saved config shows model.lr too."""
    main = fit_main if command == "digits.fit" else (lambda args: digits_main(["fit", *args]))
    with pytest.raises(SystemExit) as stopped:
        main(flags)
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {flags[0]} ")
    assert "--model.lr" in line and "--model.lr_schedule" in line
    assert not (tmp_path / "lightning_logs").exists()
