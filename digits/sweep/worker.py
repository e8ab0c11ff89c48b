"""One worker of a sweep: the loop of ``digits.sweep.study.work`` in a process of its own.

``python -m digits.sweep --n_jobs N`` starts N of these (``python -m digits.sweep.worker
SETTINGS INDEX``); with one job the command runs the loop itself. Each worker uses its
share of the machine's cores for torch and its own sampler seed, so that workers do not
oversubscribe the CPU or propose the same first trials.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import optuna
import torch

from digits.sweep.objective import CrossValidation
from digits.sweep.study import Sweep, open_study, quiet_sweep, work
from digits.training.output import quiet_lightning


def work_on(sweep: Sweep, index: int) -> None:
    """Take part in the sweep until its study holds every trial it should, finished."""
    quiet_lightning()
    quiet_sweep()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // sweep.n_jobs))
    study = open_study(sweep, create=False)
    study.sampler = worker_sampler(sweep.seed, index)
    objective = CrossValidation(sweep.space, sweep.folds, sweep.runs, sweep.base_args)
    lock = Path(sweep.folder) / "workers.lock"
    work(study, objective, sweep.trials, lock, poll_seconds=sweep.heartbeat / 2)


def worker_sampler(seed: int, index: int) -> optuna.samplers.TPESampler:
    """Worker ``index``'s sampler: reproducible from the sweep's seed, and its own.

    Workers sharing one seed would propose the same values, trial for trial.
    """
    return optuna.samplers.TPESampler(seed=seed * 1000 + index)


def main(argv: list[str] | None = None) -> None:
    settings, index = argv if argv is not None else sys.argv[1:]
    work_on(Sweep(**json.loads(settings)), int(index))


if __name__ == "__main__":
    main()
