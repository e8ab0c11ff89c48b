"""python -m digits.sweep with tiny trainings: the study read back from its storage."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lightning as L
import optuna
import pytest
import sqlalchemy
import yaml
from optuna.trial import TrialState

from digits.bench.serve import free_port
from digits.dataset import DigitsSplits
from digits.fit import main as fit_main
from digits.tools.sweep.__main__ import main, stop_workers
from digits.tools.sweep.objective import FOLD_RUN, CrossValidation
from digits.tools.sweep.report import write_best_config
from digits.tools.sweep.space import load_space
from digits.tools.sweep.study import held, held_in_database, work
from digits.tools.sweep.study import storage as sweep_storage
from digits.tools.sweep.worker import worker_sampler
from tests.conftest import cmdline, ctrl_c_as_in_a_terminal, ended_within, read_events

TINY = """
metric: val/acc
trials: 3
params:
  model.lr: {low: 1.0e-3, high: 1.0e-2, log: true}
  model.network.init_args.hidden_sizes: {choices: [[16], [32, 16]]}
  trainer.max_epochs: {low: 2, high: 3}
"""
FAST = ["--folds", "2", "--heartbeat", "1"]


def space_file(folder: Path, text: str = TINY, name: str = "tiny") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def load(name: str, storage: str | None = None) -> optuna.Study:
    url = storage or f"sqlite:///sweeps/{name}/study.db"
    return optuna.load_study(study_name=name, storage=url)


def test_a_sweep_cross_validates_each_trial_and_writes_the_winner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    read: list[str] = []
    arrays = DigitsSplits.arrays

    def recording(self, split, scaled=True):
        read.append(split)
        return arrays(self, split, scaled)

    monkeypatch.setattr(DigitsSplits, "arrays", recording)
    main(["--space", str(space_file(tmp_path)), *FAST])
    assert "test" not in read and {"train", "val"} <= set(read)  # the test split untouched

    study = load("tiny")
    assert study.metric_names == ["val/acc"]  # what optuna-dashboard shows, not "Objective 0"
    trials = study.get_trials()
    assert [trial.state for trial in trials] == [TrialState.COMPLETE] * 3
    for trial in trials:
        folds = [trial.user_attrs["fold_0"], trial.user_attrs["fold_1"]]
        assert trial.value == pytest.approx(sum(folds) / 2)
        for fold, value in enumerate(folds):
            run = Path(f"sweeps/tiny/runs/trial_{trial.number:04d}/fold_{fold}")
            events = read_events(run)
            val_acc = [event.value for event in events.Scalars("val/acc")]
            assert len(val_acc) == trial.params["trainer.max_epochs"]
            assert val_acc[-1] == pytest.approx(value)  # the end of the fold's training
            assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
            config = yaml.safe_load((run / "config.yaml").read_text())
            assert (config["data"]["folds"], config["data"]["fold"]) == (2, fold)
            assert config["model"]["lr"] == trial.params["model.lr"]
    best = max(trials, key=lambda trial: trial.value)

    output = capsys.readouterr().out
    assert f"best: trial #{best.number}" in output and "sweeps/tiny/best.yaml" in output
    assert "parameter importances" in output and "top trials by mean val/acc" in output

    config = yaml.safe_load(Path("sweeps/tiny/best.yaml").read_text())
    assert config["model"]["lr"] == best.params["model.lr"]
    assert config["trainer"]["max_epochs"] == best.params["trainer.max_epochs"]
    hidden = yaml.safe_load(best.params["model.network.init_args.hidden_sizes"])
    assert config["model"]["network"]["init_args"]["hidden_sizes"] == hidden
    summary = fit_main(
        ["--config", "sweeps/tiny/best.yaml", "--trainer.enable_progress_bar", "false"]
    )
    saved = yaml.safe_load((Path(summary.log_dir) / "config.yaml").read_text())
    assert saved["model"]["network"]["init_args"]["hidden_sizes"] == hidden


WHOLE = """
trials: 2
params:
  model.lr: {low: 1.0e-3, high: 1.0e-2, log: true}
  trainer.max_epochs: {low: 1, high: 2}
"""
# What only a fold run has: its fold, the trial's own logger folder, no checkpoints or table.
FOLD_RUN_ONLY = {
    "data": ("folds", "fold"),
    "trainer": ("logger", "enable_checkpointing", "enable_model_summary"),
}


def test_best_yaml_is_the_whole_winning_trial_and_final_trains_exactly_it(tmp_path: Path):
    """The --config files and --fit_args were cross-validated with the trial's values:
    best.yaml holds them all, and --final trains best.yaml and nothing else."""
    base = tmp_path / "base.yaml"
    base.write_text("data:\n  scale: standard\n  batch_size: 64\n")
    fit_args = '[--model.weight_decay, "0.001", --trainer.enable_progress_bar, "false"]'
    space = str(space_file(tmp_path, WHOLE, "whole"))
    main(["--space", space, *FAST, "--config", str(base), "--fit_args", fit_args, "--final"])
    best = max(load("whole").get_trials(), key=lambda trial: trial.value)

    (final,) = Path("lightning_logs/digits").iterdir()  # the --final run
    saved = yaml.safe_load((final / "config.yaml").read_text())
    assert (saved["data"]["scale"], saved["data"]["batch_size"]) == ("standard", 64)
    assert saved["model"]["weight_decay"] == 0.001
    assert saved["trainer"]["enable_progress_bar"] is False  # --fit_args, not a fold run's
    assert saved["model"]["lr"] == best.params["model.lr"]
    assert saved["trainer"]["max_epochs"] == best.params["trainer.max_epochs"]
    assert list((final / "checkpoints").glob("epoch*.ckpt"))  # a fold run keeps none

    config = yaml.safe_load(Path("sweeps/whole/best.yaml").read_text())
    assert config == saved  # --final trained best.yaml, nothing less and nothing more
    assert (config["data"]["folds"], config["data"]["fold"]) == (None, 0)
    assert config["trainer"]["logger"]["init_args"]["save_dir"] == "lightning_logs"

    # The winning trial's own settings, as its first fold saved them.
    trial_run = Path(f"sweeps/whole/runs/trial_{best.number:04d}/fold_0")
    trial = yaml.safe_load((trial_run / "config.yaml").read_text())
    for settings in (trial, saved):
        for group, keys in FOLD_RUN_ONLY.items():
            for key in keys:
                del settings[group][key]
    assert saved == trial

    # Continued by a command without that --config and --fit_args, the study's winner is
    # still written as the trial trained.
    main(["--space", space, *FAST])
    assert yaml.safe_load(Path("sweeps/whole/best.yaml").read_text()) == config


def test_a_trial_that_recorded_no_arguments_gets_this_commands_under_its_values(tmp_path: Path):
    """A study begun before trials recorded their digits.fit arguments: best.yaml is whole."""
    base = tmp_path / "base.yaml"
    base.write_text("data:\n  scale: standard\n")
    space = load_space(space_file(tmp_path))
    study = optuna.create_study(direction="maximize")
    params = {"model.lr": 0.005, "model.network.init_args.hidden_sizes": "[32, 16]"}
    distributions = {key: space.params[key] for key in params}
    trial = optuna.trial.create_trial(params=params, distributions=distributions, value=0.9)
    study.add_trial(trial)
    output = tmp_path / "best.yaml"
    write_best_config(study, study.best_trial, space, output, ["--config", str(base)])
    config = yaml.safe_load(output.read_text())
    assert config["data"]["scale"] == "standard"
    assert config["model"]["lr"] == 0.005
    assert config["model"]["network"]["init_args"]["hidden_sizes"] == [32, 16]


def test_the_same_command_continues_the_study(tmp_path: Path, capsys):
    space = str(space_file(tmp_path))
    main(["--space", space, *FAST, "--trials", "2"])
    first = [(t.number, t.params, t.value) for t in load("tiny").get_trials()]
    assert capsys.readouterr().out.startswith("sweep tiny: 2 trials of 2 folds in all, ")
    main(["--space", space, *FAST, "--trials", "4"])
    said = capsys.readouterr().out
    assert said.startswith("sweep tiny: 4 trials of 2 folds in all (2 finished already), ")
    trials = load("tiny").get_trials()
    assert [(t.number, t.params, t.value) for t in trials[:2]] == first
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    main(["--space", space, *FAST, "--trials", "4"])  # nothing left to do
    study = load("tiny")
    assert len(study.get_trials()) == 4
    assert study.user_attrs["workers_joined"] == 2  # no worker started for a whole study


OTHER_SPACE = TINY.replace("model.lr: {low: 1.0e-3, high: 1.0e-2, log: true}", "")


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "from_before_recording"])
@pytest.mark.parametrize(
    ("space_text", "options", "named"),
    [
        (OTHER_SPACE, [], "search space"),
        (TINY, ["--folds", "3"], "2 folds, not 3"),
    ],
)
def test_a_study_of_other_trials_is_not_continued(
    tmp_path: Path, capsys, space_text: str, options: list[str], named: str, recorded: bool
):
    """A space file of the same name elsewhere would find the other's trials, all finished,
    and name the other's winner as its own; other folds would mix scores that cannot be
    compared. (Other --config and --fit_args may continue it: each trial keeps its own.)"""
    main(["--space", str(space_file(tmp_path)), *FAST, "--trials", "1"])
    if not recorded:  # as a study begun before the sweep recorded its space: its trials tell
        load("tiny").set_user_attr("what_trials_are", None)
    before = [(t.number, t.params, t.value) for t in load("tiny").get_trials()]
    winner = Path("sweeps/tiny/best.yaml").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--space", str(space_file(elsewhere, space_text)), *FAST, *options])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: study 'tiny' in sqlite:///sweeps/tiny/study.db holds trials")
    assert named in line and line.endswith("choose another --study")
    assert [(t.number, t.params, t.value) for t in load("tiny").get_trials()] == before
    assert Path("sweeps/tiny/best.yaml").read_text() == winner


def test_a_refused_continuation_is_the_only_line_the_command_prints_on_stderr(tmp_path: Path):
    """Optuna says "Using an existing study" when it opens one: before a refusal, a
    second line that contradicted it."""
    space = ["--space", str(space_file(tmp_path))]
    main([*space, *FAST, "--trials", "1"])  # the study, made in this process
    sweep = [sys.executable, "-m", "digits.sweep", *space]
    other_folds = subprocess.run([*sweep, "--folds", "3"], capture_output=True, text=True)
    assert other_folds.returncode == 2
    assert other_folds.stderr.strip().splitlines() == [
        "error: study 'tiny' in sqlite:///sweeps/tiny/study.db holds trials of 2 folds, not 3: "
        "choose another --study"
    ]


def test_a_diverging_trial_fails_with_its_reason_and_the_sweep_goes_on(tmp_path: Path, capsys):
    space = """
trials: 4
params:
  model.lr: {choices: [1.0e+30, 1.0e-2]}
  trainer.max_epochs: {low: 2, high: 2}
"""
    main(["--space", str(space_file(tmp_path, space, "diverge")), *FAST])
    trials = load("diverge").get_trials()
    assert len(trials) == 4
    for trial in trials:
        if trial.params["model.lr"] > 1:
            assert trial.state == TrialState.FAIL
            assert trial.user_attrs["fail_reason"].startswith(
                "fold 0: training diverged: train/loss is nan in epoch 0"
            )
        else:
            assert trial.state == TrialState.COMPLETE
    assert {trial.state for trial in trials} == {TrialState.FAIL, TrialState.COMPLETE}
    assert "failed: fold 0: training diverged" in capsys.readouterr().out


@pytest.mark.slow
def test_hopeless_trials_are_pruned_from_their_first_fold(tmp_path: Path):
    space = """
trials: 10
params:
  model.lr: {choices: [1.0e-5, 1.0e-2]}
  trainer.max_epochs: {low: 8, high: 8}
"""
    main(["--space", str(space_file(tmp_path, space, "prune")), *FAST])
    trials = load("prune").get_trials()
    pruned = [trial for trial in trials if trial.state == TrialState.PRUNED]
    assert pruned, "no trial was pruned"
    for trial in pruned:
        assert trial.params["model.lr"] == 1.0e-5
        assert "fold_0" not in trial.user_attrs  # stopped inside its first fold
        assert 5 <= max(trial.intermediate_values) < 7  # after the warm-up, before the end
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    assert all(len(trial.intermediate_values) == 8 for trial in complete)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("  model.lrr: {low: 0.1, high: 0.2}\n", "unrecognized arguments: --model.lrr"),
        (
            "  model.weight_decay: {low: 0.2, high: 0.1}\n",
            "params.model.weight_decay: `low <= high`",
        ),
        ("  data.scale: {choices: []}\n", "params.data.scale: The `choices` must contain"),
        (
            "  model.network.init_args.dropout: {low: 0.0, high: 1.5}\n",
            "init_args.dropout=1.5 is refused: model.network.dropout must be in [0, 1)",
        ),
        ("  model.lr: {low: 0.1, hi: 0.2}\n", "params.model.lr: "),
        (  # Lightning's MisconfigurationException
            "  trainer.devices: {choices: [1, 0]}\n",
            "trainer.devices=0 is refused: `Trainer(devices='0')` value is not a valid input",
        ),
    ],
)
def test_a_bad_space_is_refused_in_one_line_before_any_trial(
    tmp_path: Path, capsys, change: str, expected: str
):
    space = space_file(tmp_path, TINY + change, "bad")
    with pytest.raises(SystemExit) as exit_info:
        main(["--space", str(space), *FAST])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and expected in line
    assert not Path("sweeps/bad/study.db").exists() and not Path("sweeps/bad/runs").exists()


def test_a_bad_fit_args_value_is_blamed_on_fit_args_not_on_the_space(tmp_path: Path, capsys):
    space = space_file(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--space", str(space), *FAST, "--fit_args", "[--trainer.max_epochs, x]"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith('error: --config and --fit_args: Parser key "trainer.max_epochs"')


class Bug(Exception):
    """What a bug raises while a run is built: neither a bad value nor one of its types."""


def test_a_bug_met_while_checking_the_space_keeps_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    """Only a bad value is "refused" in one line; a bug in building a run propagates as it is."""

    def broken(args: list[str], **options) -> None:
        raise Bug("a bug in building a run")

    monkeypatch.setattr("digits.tools.sweep.__main__.build", broken)
    with pytest.raises(Bug, match="a bug in building a run"):
        main(["--space", str(space_file(tmp_path)), *FAST])
    assert "error:" not in capsys.readouterr().err
    assert not Path("sweeps/tiny/study.db").exists()


def test_an_unreachable_storage_is_refused_in_one_line(tmp_path: Path, capsys):
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/none"  # a port nobody listens on
    with pytest.raises(SystemExit) as exit_info:
        main(["--space", str(space_file(tmp_path)), *FAST, "--storage", url])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: cannot open the storage {url}:")
    assert not Path("sweeps/tiny/runs").exists()


def test_a_storage_url_that_does_not_parse_is_refused_in_one_line(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--space", str(space_file(tmp_path)), *FAST, "--storage", "postgres:/oops"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: cannot open the storage postgres:/oops:")
    assert not Path("sweeps").exists()


def test_the_shipped_spaces_are_accepted():
    for path in sorted(Path(__file__).resolve().parent.parent.glob("configs/sweep/*.yaml")):
        space = load_space(path)
        assert space.metric == "val/acc" and space.params


# Many workers: real processes, a real PostgreSQL ---------------------------------------

# Opens the study of round N when the file goN appears, as soon as it does, and prints
# "ok" or the one-line error: processes that do this together open a new study together.
OPEN_ON_CUE = """
import json, pathlib, sys
from digits.tools.sweep.study import Sweep, open_study
folder, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])
for number in range(rounds):
    cue = folder / f"go{number}"
    while not cue.exists():
        pass
    sweep = Sweep(**json.loads((folder / f"sweep{number}.json").read_text()))
    try:
        open_study(sweep)
        print("ok", flush=True)
    except ValueError as error:
        print(error, flush=True)
"""


def test_processes_that_open_a_new_sqlite_study_at_once_all_open_it(tmp_path: Path):
    """Two sweep commands started together on one machine (or a worker and a viewer).

    Each would create Optuna's tables in the new file; without taking turns, all but one
    failed with "table studies already exists" in 9 of 10 tries with four processes.
    """
    space, rounds, processes = space_file(tmp_path), 4, 4
    for number in range(rounds):
        study = f"at_once{number}"
        settings = {
            **{"space_file": str(space), "study": study, "folder": f"sweeps/{study}"},
            **{"storage": f"sqlite:///sweeps/{study}/study.db", "trials": 3, "folds": 2},
            **{"n_jobs": 1, "seed": 0, "heartbeat": 10},
        }
        (tmp_path / f"sweep{number}.json").write_text(json.dumps(settings))
    command = [sys.executable, "-c", OPEN_ON_CUE, str(tmp_path), str(rounds)]
    children = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    reading = ThreadPoolExecutor(processes)  # a line each, with a deadline: never a hang
    try:
        for number in range(rounds):
            # The first round may find some processes still importing; from the second
            # on, all of them wait at the cue and open the new study together.
            (tmp_path / f"go{number}").touch()
            lines = [reading.submit(child.stdout.readline) for child in children]
            answers = [line.result(timeout=120).strip() for line in lines]
            assert answers == ["ok"] * processes, f"round {number}: {answers}"
            assert load(f"at_once{number}").direction.name == "MAXIMIZE"
    finally:
        for child in children:
            child.kill()
            child.communicate()
        reading.shutdown()


TRUST = ["--auth=trust", "--no-sync"]  # a throwaway cluster, on 127.0.0.1 only


def postgres_binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster of its own on 127.0.0.1, for the time of the block; its URL."""
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="digits-postgres-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:  # the server refuses to run as root
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    run = [*as_postgres, str(binaries / "pg_ctl")]
    try:
        subprocess.run(
            [*as_postgres, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", *TRUST],
            check=True,
            capture_output=True,
        )
        options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off"
        subprocess.run(
            [*run, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        subprocess.run(
            [
                str(binaries / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "digits",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/digits"
    finally:
        subprocess.run(
            [*run, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, check=False
        )
        shutil.rmtree(folder, ignore_errors=True)


SWEEP = [sys.executable, "-m", "digits.sweep"]


def most_waiting_for_one_lock(url: str) -> int:
    """The most database sessions waiting for one advisory lock, read from PostgreSQL itself.

    (The workers also take turns briefly at another lock, the storage's, as they start;
    at most three of the four can wait there at once.)
    """
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    query = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " GROUP BY classid, objid ORDER BY 1 DESC LIMIT 1"
    )
    with engine.connect() as connection:
        return int(connection.execute(sqlalchemy.text(query)).scalar() or 0)


@pytest.mark.slow
def test_two_machines_share_one_postgresql_study_and_start_exactly_the_trials_asked(
    tmp_path: Path,
):
    """Two sweep commands, each with two workers, in folders of their own (as on two
    machines: no file lock in common), share only the storage; the study gets exactly
    --trials trials, and each worker proposes its own values."""
    space = str(space_file(tmp_path, TINY.replace("trials: 3", "trials: 6")))
    machines = [tmp_path / "machine_a", tmp_path / "machine_b"]
    with throwaway_postgres() as url:
        command = [*SWEEP, "--space", space, *FAST, "--n_jobs", "2", "--storage", url]
        # A third party holds the study's lock first: every worker must wait for it
        # before it creates a trial, whichever machine it runs on.
        with held_in_database(url, "study tiny") as release:
            sweeps = []
            for machine in machines:
                machine.mkdir()
                sweeps.append(
                    subprocess.Popen(
                        command,
                        cwd=machine,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
            deadline = time.monotonic() + 60
            while most_waiting_for_one_lock(url) < 4:
                assert time.monotonic() < deadline, "the workers never waited for the lock"
                ended = [sweep.communicate()[0] for sweep in sweeps if sweep.poll() is not None]
                assert not ended, ended[0][-3000:]
                time.sleep(0.2)
            assert load("tiny", url).get_trials() == []
            release()
        outputs = [sweep.communicate(timeout=300)[0] for sweep in sweeps]
        assert [sweep.returncode for sweep in sweeps] == [0, 0], outputs
        study = load("tiny", url)
        trials = study.get_trials()
        workers_joined = study.user_attrs["workers_joined"]
    assert [trial.number for trial in trials] == list(range(6))  # none lost, none doubled
    assert [trial.state for trial in trials] == [TrialState.COMPLETE] * 6
    assert all({"fold_0", "fold_1"} <= set(trial.user_attrs) for trial in trials)
    assert workers_joined == 4
    # Four workers waited at the lock, so each started one of the first four trials, and
    # each proposed its own values: same-seeded workers (one per machine) would propose
    # the same learning rate.
    assert len({trial.user_attrs["worker"] for trial in trials[:4]}) == 4
    assert len({trial.params["model.lr"] for trial in trials}) == 6
    runs = sorted(
        path.name for machine in machines for path in (machine / "sweeps/tiny/runs").iterdir()
    )
    assert runs == [f"trial_{number:04d}" for number in range(6)]
    assert not any((machine / "sweeps/tiny/study.db").exists() for machine in machines)
    summary = fit_main(
        [
            "--config",
            str(machines[0] / "sweeps/tiny/best.yaml"),
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    assert summary.test_acc > 0.1


def test_a_trial_ctrl_c_stops_between_folds_is_left_to_run_again(tmp_path: Path):
    """Outside training, Ctrl-C is a KeyboardInterrupt in the objective, which Optuna would
    record as a failed trial, done for good; it stays running, to be run again."""

    def between_folds(trial: optuna.Trial) -> float:
        trial.suggest_float("model.lr", 1e-3, 1e-2)
        raise KeyboardInterrupt

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    lock = functools.partial(held, tmp_path / "workers.lock")
    try:
        work(study, between_folds, 1, lock, poll_seconds=0.1)
    except KeyboardInterrupt:  # caught here, or pytest would stop the whole run
        pytest.fail("Ctrl-C left the sweep as a KeyboardInterrupt")
    except SystemExit as exit_:
        assert exit_.code == 130
    else:
        pytest.fail("the sweep went on after Ctrl-C")
    assert [trial.state for trial in study.get_trials()] == [TrialState.RUNNING]


class CtrlCDuringABatch(L.Callback):
    """Sends this process SIGINT during epoch 1's third batch, as Ctrl-C lands anywhere,
    and writes down the frame, epoch and batch where the KeyboardInterrupt surfaced (in a
    file: the CLI imports this module under another name than pytest does)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if (trainer.current_epoch, batch_idx) == (1, 2):
            os.kill(os.getpid(), signal.SIGINT)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        frame = traceback.extract_tb(exception.__traceback__)[-1]
        where = [frame.name, trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_idx]
        Path("surfaced.json").write_text(json.dumps(where))


def test_ctrl_c_during_a_folds_training_is_acted_on_between_two_batches(tmp_path: Path):
    """Raised where it lands, a KeyboardInterrupt can land in a garbage collector's callback
    (SQLAlchemy's, of the study's objects), where Python prints it and drops it: the worker
    would train on. A fold run notes it and stops at the end of the batch, as digits.fit does."""
    space = load_space(space_file(tmp_path, TINY))
    signalled = ["--trainer.callbacks+=tests.test_sweep.CtrlCDuringABatch"]
    cross_validation = CrossValidation(space, 2, tmp_path / "runs", signalled)
    trial = optuna.create_study().ask()
    args = [*signalled, *space.fit_args(space.lowest()), *FOLD_RUN]  # as a trial runs its folds
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with pytest.raises(SystemExit):  # Lightning's answer to a KeyboardInterrupt
            cross_validation.fold(trial, args, fold=1)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert json.loads(Path("surfaced.json").read_text()) == ["_stop_if_asked", 1, 2]


def stand_in_worker(ignores_ctrl_c: bool) -> subprocess.Popen:
    """A process that prints ``ready`` and sleeps: one that ignores SIGINT stands in for a
    worker stuck in its shutdown, the other ends on it as a worker does."""
    ignoring = "signal.signal(signal.SIGINT, signal.SIG_IGN)" if ignores_ctrl_c else "pass"
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import signal, time; {ignoring}; print('ready', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the KeyboardInterrupt's traceback of the one that ends
        text=True,
        preexec_fn=None if ignores_ctrl_c else ctrl_c_as_in_a_terminal,
    )


def test_a_worker_that_does_not_stop_after_ctrl_c_is_killed_and_the_command_ends(capfd):
    """The sweep waited for every worker after Ctrl-C, forever for one stuck in its
    shutdown (one that ignores SIGINT stands in for it): it is killed after a while, and
    its trial, left running, runs again when the study is continued."""
    stuck, stopping = stand_in_worker(ignores_ctrl_c=True), stand_in_worker(ignores_ctrl_c=False)
    workers = [stuck, stopping]
    pool = ThreadPoolExecutor(1)
    try:
        assert [worker.stdout.readline() for worker in workers] == ["ready\n"] * 2
        stopped = pool.submit(stop_workers, workers, pass_on_after=0.2, kill_after=1.0)
        try:
            stopped.result(timeout=30)
        except TimeoutError:
            pytest.fail("the command still waits for a worker that does not stop")
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
        pool.shutdown()
    assert stopping.returncode == -signal.SIGINT  # stopped by the SIGINT passed on
    assert stuck.returncode == -signal.SIGKILL
    assert capfd.readouterr().err.strip() == (
        f"worker {stuck.pid} had not stopped 1 s after Ctrl-C was passed on: killed"
    )


def test_a_second_ctrl_c_kills_the_workers_still_running_at_once(capfd):
    stuck = stand_in_worker(ignores_ctrl_c=True)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    second = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    try:
        assert stuck.stdout.readline() == "ready\n"
        second.start()
        stop_workers([stuck], pass_on_after=0.2, kill_after=120.0)
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C escaped with the worker still running")
    finally:
        second.cancel()
        signal.signal(signal.SIGINT, handler)
        stuck.kill()
        stuck.wait()
    assert capfd.readouterr().err.strip() == (
        f"worker {stuck.pid} was still running at the second Ctrl-C: killed"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n_jobs", "sent_to"), [("1", "terminal"), ("2", "terminal"), ("2", "command alone")]
)
def test_ctrl_c_ends_the_sweep_with_130_and_counts_no_trial_as_failed(
    tmp_path: Path, n_jobs: str, sent_to: str
):
    """Ctrl-C in a terminal reaches every process of the sweep; sent to the command alone
    (``kill -INT``), it is passed on to the workers. A trial it stops did not fail on its
    own: Optuna would record it as failed, and a failed trial counts as done, so it would
    never run again."""
    space = """
trials: 2
params:
  model.lr: {low: 1.0e-3, high: 1.0e-2, log: true}
  trainer.max_epochs: {low: 400, high: 400}
"""
    command = [*SWEEP, "--space", str(space_file(tmp_path, space, "ctrlc")), *FAST]
    sweep = subprocess.Popen(
        [*command, "--n_jobs", n_jobs],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's job is
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    # Every worker training (a worker still starting would be interrupted in its imports).
    training = [Path(f"sweeps/ctrlc/runs/trial_{n:04d}/fold_0") for n in range(int(n_jobs))]
    deadline = time.monotonic() + 120
    while not all(list(run.glob("events.out.tfevents.*")) for run in training):
        assert sweep.poll() is None, sweep.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no trial ever trained"
        time.sleep(0.1)
    time.sleep(0.5)
    if sent_to == "terminal":
        os.killpg(sweep.pid, signal.SIGINT)
    else:
        sweep.send_signal(signal.SIGINT)
    try:
        stderr = ended_within(sweep, 120, group=True)
    finally:  # a worker left behind would train on beside the next tests
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-6000:]
    assert stderr.strip().splitlines()[-1] == (
        "interrupted: the same command continues the study, and runs the stopped trials again"
    )
    states = [trial.state for trial in load("ctrlc").get_trials()]
    assert TrialState.RUNNING in states and TrialState.FAIL not in states


@pytest.mark.slow
def test_a_killed_worker_leaves_no_trial_running_and_the_rerun_completes(tmp_path: Path):
    # Two trials for two workers: the survivor has nothing left to start when its own
    # trial ends, and must wait for the lost one to go stale and run it again.
    space = """
trials: 2
params:
  model.lr: {low: 1.0e-3, high: 1.0e-2, log: true}
  trainer.max_epochs: {low: 30, high: 30}
"""
    command = [*SWEEP, "--space", str(space_file(tmp_path, space, "kill")), *FAST, "--n_jobs", "2"]
    sweep = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = "sqlite:///sweeps/kill/study.db"
    deadline = time.monotonic() + 120
    running: list = []
    while not running:  # wait until a worker is training a trial (all its values drawn)
        if sweep.poll() is not None:
            pytest.fail(f"the sweep ended before any trial ran:\n{sweep.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, "no trial ever ran"
        time.sleep(0.1)
        with contextlib.suppress(Exception):
            # Through the sweep's own storage(), which takes turns with the sweep at
            # creating the new file's tables.
            trials = optuna.load_study(
                study_name="kill", storage=sweep_storage(url, 10)
            ).get_trials()
            running = [
                t
                for t in trials
                if t.state == TrialState.RUNNING and "worker" in t.user_attrs and len(t.params) == 2
            ]
    pid = int(running[0].user_attrs["worker"].rsplit(":", 1)[1])
    assert b"digits.tools.sweep.worker" in cmdline(pid)
    os.kill(pid, signal.SIGKILL)
    _, stderr = sweep.communicate(timeout=300)
    assert sweep.returncode == 0 or "worker exit codes" in stderr

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    trials = load("kill").get_trials()
    states = [trial.state for trial in trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    lost = [trial for trial in trials if trial.state == TrialState.FAIL]
    assert [trial.number for trial in lost] == [running[0].number]
    assert len(trials) == 3  # the lost one, run again as a third
    again = [trial for trial in trials if trial.system_attrs.get("failed_trial") is not None]
    assert [trial.system_attrs["failed_trial"] for trial in again] == [lost[0].number]
    done = (TrialState.COMPLETE, TrialState.PRUNED)  # the median pruner may stop some
    assert again[0].params == lost[0].params and again[0].state in done
    assert sum(state in done for state in states) == 2
    assert "1 lost with a worker and run again" in rerun.stdout
    # The survivor ran the lost trial again, so the rerun found the study whole.
    assert load("kill").user_attrs["workers_joined"] == 2


def test_each_worker_samples_its_own_values_reproducibly():
    def first_values(seed: int, index: int) -> list[float]:
        study = optuna.create_study(sampler=worker_sampler(seed, index))
        return [study.ask().suggest_float("lr", 1e-4, 1e-1, log=True) for _ in range(3)]

    assert first_values(0, 0) == first_values(0, 0)
    assert first_values(0, 0) != first_values(0, 1)
    assert first_values(1, 0) != first_values(0, 0)


NOISY = """
metric: val/acc
trials: 1
fixed:
  trainer.max_epochs: 8
params:
  model.lr: {low: 0.08, high: 0.1}
"""


def test_a_fold_scores_its_last_epoch_not_its_best(tmp_path: Path):
    """A fold whose validation accuracy peaks before the end is scored at the end.

    The best epoch would be chosen on the very images it is scored on (docs/sweep.md).
    """
    main(["--space", str(space_file(tmp_path, NOISY, "noisy")), *FAST])
    (trial,) = load("noisy").get_trials()
    curves = [
        [event.value for event in read_events(run).Scalars("val/acc")]
        for run in (Path(f"sweeps/noisy/runs/trial_0000/fold_{fold}") for fold in range(2))
    ]
    assert any(max(curve) > curve[-1] for curve in curves), "no fold peaked before its end"
    for fold, curve in enumerate(curves):
        assert trial.user_attrs[f"fold_{fold}"] == pytest.approx(curve[-1])
    assert trial.value == pytest.approx(sum(curve[-1] for curve in curves) / 2)
