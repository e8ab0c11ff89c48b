"""Choose the settings by cross-validation with Optuna, on one machine or many.

Usage::

    python -m digits.sweep --space configs/sweep/mlp.yaml --n_jobs 2
    python -m digits.sweep --space configs/sweep/mlp.yaml --final        # then test the winner
    python -m digits.sweep --space configs/sweep/mlp.yaml --storage postgresql://USER:PASSWORD@HOST/DB

Every trial trains each of ``--folds`` cross-validation folds of the non-test images
in-process, through the same code as ``python -m digits.fit``; its value is the mean over
the folds of the validation score at the end of training. Everything lands in
``sweeps/<study>/``: the study (SQLite, unless ``--storage`` names another database),
one TensorBoard run per fold of every trial (``runs/``) and the winner's whole config,
``best.yaml``, which ``--final`` trains. The same command again continues the study; on
several machines, the same command with the same ``--storage`` adds their workers to it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import optuna
from jsonargparse import ArgumentParser, Namespace
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from digits.errors import (
    INTERRUPTED,
    UsageError,
    exit_130_on_ctrl_c,
    fail,
    reading_the_command_line,
)
from digits.fit import build
from digits.fit import main as fit_main
from digits.tools.sweep.objective import FOLD_RUN
from digits.tools.sweep.report import ranked, summary, write_best_config
from digits.tools.sweep.space import decode, load_space
from digits.tools.sweep.study import (
    Sweep,
    all_finished,
    checked_storage_url,
    finished,
    open_study,
    quiet_sweep,
)
from digits.tools.sweep.worker import work_on
from digits.training.output import quiet_lightning

SWEEPS = Path("sweeps")
PASS_ON_CTRL_C_AFTER_SECONDS = 5.0
KILL_AFTER_SECONDS = 60.0  # after passing Ctrl-C on: a fold run shuts down in seconds
INTERRUPTED_NOTE = (
    "interrupted: the same command continues the study, and runs the stopped trials again"
)


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m digits.sweep", exit_on_error=False)
    parser.add_argument("--space", type=str, required=True, help="The search space (YAML).")
    parser.add_argument(
        "--trials",
        type=int | None,
        default=None,
        help="Trials the study ends with (default: the space's).",
    )
    parser.add_argument("--n_jobs", type=int, default=1, help="Worker processes on this machine.")
    parser.add_argument("--folds", type=int, default=5, help="Cross-validation folds per trial.")
    parser.add_argument(
        "--storage",
        type=str | None,
        default=None,
        help="An Optuna storage URL shared by many machines (default: SQLite in sweeps/STUDY/).",
    )
    parser.add_argument("--study", type=str | None, default=None, help="Default: the space's name.")
    parser.add_argument(
        "--config",
        type=str,
        default=[],
        action="append",
        help="A digits.fit config under every trial; give it again to compose several.",
    )
    parser.add_argument(
        "--fit_args",
        type=list[str],
        default=[],
        help="More digits.fit arguments for every trial, e.g. '[--data.batch_size, \"64\"]'.",
    )
    parser.add_argument("--seed", type=int, default=0, help="The sampler's seed.")
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=10,
        help="Seconds between a running trial's heartbeats; after 3 missed, it is run again.",
    )
    parser.add_argument("--final", action="store_true", help="Then fit best.yaml once and test it.")
    return parser


def plan(options: Namespace) -> Sweep:
    """The sweep the command line describes, checked before any trial runs."""
    space = load_space(options.space)
    for name in ("n_jobs", "folds", "heartbeat"):
        least = 2 if name == "folds" else 1
        if options[name] < least:
            raise ValueError(f"--{name} must be at least {least}, got {options[name]}")
    trials = options.trials if options.trials is not None else space.trials
    if trials < 1:
        raise ValueError(f"--trials must be at least 1, got {trials}")
    for config in options.config:
        if not Path(config).is_file():
            raise ValueError(f"config not found: {config}")
    study = options.study or Path(options.space).stem
    folder = SWEEPS / study
    url = checked_storage_url(options.storage or f"sqlite:///{folder / 'study.db'}")
    base_args = [*(arg for config in options.config for arg in ("--config", config))]
    return Sweep(
        space_file=str(options.space),
        study=study,
        storage=url,
        folder=str(folder),
        trials=trials,
        folds=options.folds,
        n_jobs=options.n_jobs,
        seed=options.seed,
        heartbeat=options.heartbeat,
        base_args=[*base_args, *options.fit_args],
    )


def check_space_accepted(sweep: Sweep) -> None:
    """Build (not train) a run at every edge of the space: a value the CLI refuses is found now.

    Only a bad value is refused; anything else raised while building is a bug, and keeps
    its traceback.
    """
    space = sweep.space
    fold_run = [*FOLD_RUN, "--data.folds", str(sweep.folds), "--trainer.logger", "false"]

    def refused(space_args: list[str]) -> str | None:
        try:
            build([*sweep.base_args, *space_args, *fold_run])
        except UsageError as error:  # what DigitsCLI found while reading and building
            return str(error)
        return None

    error = refused(space.fit_args(space.lowest()))
    if error is not None:
        if refused([]) == error:  # the command's own --config and --fit_args, space or not
            raise ValueError(f"--config and --fit_args: {error}")
        raise ValueError(f"{sweep.space_file}: {error}")
    for key, value, values in space.every_edge():
        error = refused(space.fit_args(values))
        if error is not None:
            raise ValueError(f"{sweep.space_file}: {key}={decode(value)} is refused: {error}")


def run_workers(sweep: Sweep, study: optuna.Study) -> None:
    """``--n_jobs`` worker processes on this machine (just this one for a single job).

    No worker at all when the study already holds all its trials, finished: the command
    run again on a whole study reports it at once, without starting workers that would
    find nothing to do.
    """
    if all_finished(study.get_trials(deepcopy=False), sweep.trials):
        return
    if sweep.n_jobs == 1:
        work_on(sweep)
        return
    settings = json.dumps(asdict(sweep))
    workers = [
        subprocess.Popen([sys.executable, "-m", "digits.tools.sweep.worker", settings])
        for _ in range(sweep.n_jobs)
    ]
    try:
        codes = [worker.wait() for worker in workers]
    except KeyboardInterrupt:
        stop_workers(workers)
        raise
    if any(codes):
        print(f"note: worker exit codes {codes}", file=sys.stderr)


def stop_workers(
    workers: list[subprocess.Popen],
    pass_on_after: float = PASS_ON_CTRL_C_AFTER_SECONDS,
    kill_after: float = KILL_AFTER_SECONDS,
) -> None:
    """After Ctrl-C: a terminal's reached the workers too, and they end on their own;
    one sent to this process alone is passed on to those still running after a while.

    A worker still running ``kill_after`` seconds later (stuck in its shutdown, which
    ignores Ctrl-C, as Lightning's does) is killed rather than waited for forever: its
    trial stays running in the study, as any trial Ctrl-C stops, and runs again when the
    study is continued. Another Ctrl-C meanwhile kills them at once.
    """
    why = f"had not stopped {kill_after:g} s after Ctrl-C was passed on"
    try:
        if not _all_ended(workers, pass_on_after):
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGINT)
            _all_ended(workers, kill_after)
    except KeyboardInterrupt:
        why = "was still running at the second Ctrl-C"
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
            print(f"worker {worker.pid} {why}: killed", file=sys.stderr)
    for worker in workers:
        worker.wait()


def _all_ended(workers: list[subprocess.Popen], seconds: float) -> bool:
    """Wait up to ``seconds`` in all for every worker to end; whether they all did."""
    deadline = time.monotonic() + seconds
    try:
        for worker in workers:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    return True


def main(args: list[str] | None = None) -> optuna.Study:
    """Run the sweep; Ctrl-C anywhere (checking the space, training, the summary) is 130."""
    with exit_130_on_ctrl_c():
        return sweep_and_report(args)


def sweep_and_report(args: list[str] | None) -> optuna.Study:
    quiet_lightning()
    quiet_sweep()
    with reading_the_command_line(MisconfigurationException):
        options = parser().parse_args(args)
        sweep = plan(options)
        check_space_accepted(sweep)
        study = open_study(sweep)
    # --trials is what the study ends with: say what it holds already, or a study that
    # holds more would seem to run fewer than it then reports finished.
    held = len(finished(study.get_trials(deepcopy=False)))
    print(
        f"sweep {sweep.study}: {sweep.trials} trials of {sweep.folds} folds in all"
        + (f" ({held} finished already)" if held else "")
        + f", {sweep.n_jobs} worker(s), storage {sweep.storage}",
        flush=True,
    )
    try:
        with exit_130_on_ctrl_c():  # as 130 here, to say how to go on
            run_workers(sweep, study)
    except SystemExit as exit_:
        if exit_.code == INTERRUPTED:
            print(INTERRUPTED_NOTE, file=sys.stderr)
        raise
    print(summary(study, sweep.space))
    done = finished(study.get_trials())
    if len(done) < sweep.trials:
        message = f"{len(done)} of {sweep.trials} trials finished; run the same command again"
        raise fail(message, code=1)
    if not any(trial.state.name == "COMPLETE" for trial in done):
        raise fail("no trial completed: nothing to choose from", code=1)
    output = Path(sweep.folder) / "best.yaml"
    best = ranked(study)[0]
    with reading_the_command_line(MisconfigurationException):  # e.g. its --config file is gone
        write_best_config(study, best, sweep.space, output, sweep.base_args)
    print(f"best: trial #{best.number}, {sweep.space.metric} {best.value:.4f}; config {output}")
    print(f"to look: tensorboard --logdir {sweep.runs}   or   optuna-dashboard {sweep.storage}")
    if options.final:
        fit_main(["--config", str(output)])
    return study


if __name__ == "__main__":
    main()
