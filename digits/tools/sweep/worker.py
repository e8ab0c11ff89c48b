"""One worker of a sweep: the loop of ``digits.tools.sweep.study.work`` in a process of its own.

``python -m digits.sweep --n_jobs N`` starts N of these (``python -m digits.tools.sweep.worker
SETTINGS``); with one job the command runs the loop itself. Each worker uses its share
of the machine's cores for torch and its own sampler seed, so that workers do not
oversubscribe the CPU or propose the same first trials, on this machine or any other
that shares the study.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager

import optuna
import torch

from digits.errors import exit_130_on_ctrl_c
from digits.tools.sweep.objective import CrossValidation
from digits.tools.sweep.study import Sweep, deciding, open_study, quiet_sweep, work
from digits.training.output import quiet_lightning

WORKERS_JOINED = "workers_joined"  # a study attribute: how many workers have taken part
LONGEST_POLL_SECONDS = 1.0


def work_on(sweep: Sweep) -> None:
    """Take part in the sweep until its study holds every trial it should, finished.

    A worker with nothing left to start looks at the study again at least every second
    (every half heartbeat when that is shorter): the command ends soon after the last
    trial, and a lost trial is taken up soon after its heartbeat goes stale.
    """
    quiet_lightning()
    quiet_sweep()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // sweep.n_jobs))
    study = open_study(sweep, create=False)
    lock = functools.partial(deciding, sweep)
    study.sampler = worker_sampler(sweep.seed, join(study, lock))
    objective = CrossValidation(sweep.space, sweep.folds, sweep.runs, sweep.base_args)
    poll_seconds = min(LONGEST_POLL_SECONDS, sweep.heartbeat / 2)
    work(study, objective, sweep.trials, lock, poll_seconds=poll_seconds)


def join(study: optuna.Study, lock: Callable[[], AbstractContextManager]) -> int:
    """This worker's number in the study: 0 for the first worker ever to join it, and so on.

    Handed out under the lock that every worker of the study shares, so that workers on
    different machines running the same command (the same ``--seed``) still differ, and
    a command run again to continue a study does not repeat the first one's proposals.
    """
    with lock():
        number = int(study.user_attrs.get(WORKERS_JOINED, 0))
        study.set_user_attr(WORKERS_JOINED, number + 1)
    return number


def worker_sampler(seed: int, number: int) -> optuna.samplers.TPESampler:
    """Worker ``number``'s sampler: reproducible from the sweep's seed, and its own.

    Workers sharing one seed would propose the same values, trial for trial.
    """
    return optuna.samplers.TPESampler(seed=seed * 1000 + number)


def main(argv: list[str] | None = None) -> None:
    (settings,) = argv if argv is not None else sys.argv[1:]
    # Ctrl-C finds an idle worker polling, or one opening the study: 130, no traceback.
    with exit_130_on_ctrl_c():
        work_on(Sweep(**json.loads(settings)))


if __name__ == "__main__":
    main()
