"""The study: where it is stored, and the loop each worker process runs on it.

The default storage is SQLite in the sweep's own folder (``sweeps/<study>/study.db``),
safe for several processes on one machine; any other Optuna storage URL (PostgreSQL for
many machines) works the same. Every running trial records a heartbeat: a worker that
dies (SIGKILL, a lost machine) leaves a trial whose heartbeat stops, which the next look
at the study fails and queues again (Optuna's ``RetryHeartbeatStaleTrialCallback``).

``--trials N`` is the number of trials the study should end with, counting those that
completed, were pruned or failed on their own (a diverged training), and not those
that were only lost with a worker and run again. A worker holds a lock while it decides
whether a trial is still needed and creates it, so that workers never start more than N
between them: on PostgreSQL the storage's own (an advisory lock, held in a transaction
of the study's database, which every machine's workers share), elsewhere a file lock
beside the study (SQLite is for one machine).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from digits.errors import exit_130_on_ctrl_c
from digits.tools.sweep.space import SearchSpace, load_space

MAX_RETRIES = 3  # a trial lost with its worker is run again at most this often


@dataclass(frozen=True)
class Sweep:
    """Everything a worker needs to take part, as plain values (it crosses processes)."""

    space_file: str
    study: str
    storage: str
    folder: str
    trials: int
    folds: int
    n_jobs: int
    seed: int
    heartbeat: int
    base_args: list[str] = field(default_factory=list)

    @functools.cached_property
    def space(self) -> SearchSpace:
        """The space file, read once per process."""
        return load_space(self.space_file)

    @property
    def runs(self) -> Path:
        return Path(self.folder) / "runs"


def quiet_sweep() -> None:
    """Optuna's line per trial stays; Lightning's lines per fold run and experimental notes go."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_study(sweep: Sweep, create: bool = True) -> optuna.Study:
    """The sweep's study, created on first use; a one-line ``ValueError`` if it cannot be."""
    database = sqlite_file(sweep.storage)
    if database is not None:  # the file's folder, before SQLite opens it
        database.parent.mkdir(parents=True, exist_ok=True)
    space = sweep.space
    options = {
        "study_name": sweep.study,
        "storage": storage(sweep.storage, sweep.heartbeat),
        "pruner": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5),
    }
    if not create:
        return optuna.load_study(**options)
    # Without Optuna's "Using an existing study" on stderr: the study may yet be refused
    # below, and the sweep's first line says what it holds.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction=space.direction, load_if_exists=True, **options)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if study.direction.name.lower() != space.direction:
        raise ValueError(
            f"study {sweep.study!r} in {sweep.storage} {study.direction.name.lower()}s; "
            f"the space says {space.direction}: choose another --study"
        )
    check_same_trials(study, sweep)
    # The objective's name, so that optuna-dashboard and trials_dataframe() say val/acc
    # rather than "Objective 0".
    if study.metric_names is None:
        study.set_metric_names([space.metric])
    elif study.metric_names != [space.metric]:
        raise ValueError(
            f"study {sweep.study!r} in {sweep.storage} scores {study.metric_names[0]}; "
            f"the space says {space.metric}: choose another --study"
        )
    return study


TRIALS_KEY = "what_trials_are"  # the study's user attribute: its space and folds


def what_trials_are(sweep: Sweep) -> dict[str, Any]:
    """What makes two trials' scores comparable: the space they were drawn from, the folds.

    Not the number of trials (continuing a study asks for more), the sampler's seed, nor
    the ``--config`` files and ``--fit_args``: each trial records its own, and is written
    as it trained when it wins.
    """
    space = sweep.space
    return {
        "params": {key: distribution_to_json(dist) for key, dist in space.params.items()},
        "fixed": json.loads(json.dumps(space.fixed, default=str)),
        "folds": sweep.folds,
    }


def what_its_trials_were(study: optuna.Study) -> dict[str, Any] | None:
    """For a study from before ``TRIALS_KEY`` was recorded: what its trials show (the
    distributions they drew from, their folds' scores); None for a study without trials."""
    trials = [trial for trial in study.get_trials(deepcopy=False) if trial.distributions]
    if not trials:
        return None
    params = {
        key: distribution_to_json(dist)
        for trial in trials
        for key, dist in trial.distributions.items()
    }
    folds = {
        sum(key.startswith("fold_") for key in trial.user_attrs)
        for trial in trials
        if trial.state == TrialState.COMPLETE
    }
    return {"params": params, "fixed": None, "folds": folds.pop() if len(folds) == 1 else None}


def how_they_differ(recorded: dict[str, Any], sweep: Sweep) -> str | None:
    """How a study's trials differ from the ones this sweep would add; None if they do not."""
    wanted = what_trials_are(sweep)
    theirs = {key: json_to_distribution(text) for key, text in recorded["params"].items()}
    if theirs != sweep.space.params:
        return "another search space"
    if recorded["fixed"] is not None and recorded["fixed"] != wanted["fixed"]:
        return "other fixed settings"
    if recorded["folds"] is not None and recorded["folds"] != wanted["folds"]:
        return f"{recorded['folds']} folds, not {wanted['folds']}"
    return None


def check_same_trials(study: optuna.Study, sweep: Sweep) -> None:
    """A study continues only with trials like its own; a new one records what they are.

    The study is named after the space file, so a space of the same name elsewhere would
    otherwise find the other's trials (all finished: it would run none, and name the other
    sweep's winner as its own), and other folds would add scores that cannot be compared.
    Two first commands take turns here, so that they cannot both record theirs: at a lock
    of the storage's own, not the workers' (which a command waits for only in its workers).
    """
    with _one_at_a_time(sweep.storage, f"what trials of {sweep.study} are"):
        recorded = study.user_attrs.get(TRIALS_KEY)
        known = recorded or what_its_trials_were(study)
        differs = how_they_differ(known, sweep) if known is not None else None
        if differs is not None:
            raise ValueError(
                f"study {sweep.study!r} in {sweep.storage} holds trials of {differs}: "
                "choose another --study"
            )
        if recorded is None:
            study.set_user_attr(TRIALS_KEY, what_trials_are(sweep))


def checked_storage_url(url: str) -> str:
    """The storage URL, if SQLAlchemy can read it; a one-line ``ValueError`` if not."""
    try:
        sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as error:  # ValueError: a bad port
        raise ValueError(f"cannot open the storage {url}: {error}") from None
    return url


def storage(url: str, heartbeat_seconds: int) -> RDBStorage:
    """An Optuna storage with heartbeats; a one-line ``ValueError`` if it cannot be reached.

    Processes that open a new storage at the same moment take turns: each would
    otherwise create Optuna's tables, and all but one would fail. On PostgreSQL they
    take turns at an advisory lock of the database, on SQLite at a file lock beside it.
    """
    try:
        with _one_at_a_time(url, "storage"):
            return _rdb_storage(url, heartbeat_seconds)
    except Exception as error:  # sqlalchemy's errors differ by database and driver
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot open the storage {url}: {detail}") from None


def _one_at_a_time(url: str, name: str) -> contextlib.AbstractContextManager:
    if is_postgresql(url):
        return held_in_database(url, name)
    database = sqlite_file(url)
    # A folder the user may not write in holds a study to read, which creates nothing.
    if database is not None and os.access(database.parent, os.W_OK):
        return held(database.with_name(f"{database.name}.lock"))
    return contextlib.nullcontext()


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite storage URL; ``None`` for another database, or SQLite in
    memory or given as a URI (``?uri=true``), whose file the URL does not plainly name."""
    parsed = sqlalchemy.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def is_postgresql(url: str) -> bool:
    return sqlalchemy.engine.make_url(url).get_backend_name() == "postgresql"


def _rdb_storage(url: str, heartbeat_seconds: int) -> RDBStorage:
    return RDBStorage(
        url,
        # SQLite: wait for the other workers' writes instead of failing at once.
        engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
        heartbeat_interval=heartbeat_seconds,
        grace_period=3 * heartbeat_seconds,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(MAX_RETRIES),
    )


def lost_with_a_worker(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of the trials that failed only because their worker stopped beating."""
    return {
        number
        for trial in trials
        for number in RetryHeartbeatStaleTrialCallback.retry_history(trial)
    }


def trials_that_count(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Every trial planned or done, but not those lost with a worker (they run again)."""
    lost = lost_with_a_worker(trials)
    return [trial for trial in trials if trial.number not in lost]


def finished(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [trial for trial in trials_that_count(trials) if trial.state in done]


def deciding(sweep: Sweep) -> contextlib.AbstractContextManager[Callable[[], None]]:
    """The lock a worker holds while it counts the trials and creates one.

    Entered, it waits for the lock and gives a function that releases it early (once).
    """
    if is_postgresql(sweep.storage):
        return held_in_database(sweep.storage, f"study {sweep.study}")
    return held(Path(sweep.folder) / "workers.lock")


@contextlib.contextmanager
def held_in_database(url: str, name: str) -> Iterator[Callable[[], None]]:
    """PostgreSQL's advisory lock called ``name``, held by a transaction of the database.

    Workers on any machine that reach the storage wait for each other here, and a worker
    that dies loses its connection and with it the lock.
    """
    digest = hashlib.sha256(f"digits.sweep {name}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    connection = _engine(url).connect()
    try:
        connection.begin()
        connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    except BaseException:
        connection.close()
        raise

    def release() -> None:
        if not connection.closed:
            connection.commit()  # ends the transaction, and the lock with it
            connection.close()

    try:
        yield release
    finally:
        release()


@functools.cache
def _engine(url: str) -> sqlalchemy.Engine:
    """One engine per process; no pool, so a released lock leaves no idle connection."""
    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)


@contextlib.contextmanager
def held(lock_file: Path) -> Iterator[Callable[[], None]]:
    """An exclusive lock on a file, and a function that releases it early (once)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                fcntl.flock(handle, fcntl.LOCK_UN)
                released = True

        try:
            yield release
        finally:
            release()


def all_finished(trials: list[FrozenTrial], n_trials: int) -> bool:
    """Whether the study holds its ``n_trials`` and none is running or waiting to run again."""
    counted = trials_that_count(trials)
    unfinished = (TrialState.RUNNING, TrialState.WAITING)
    return len(counted) >= n_trials and not any(trial.state in unfinished for trial in counted)


def work(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    lock: Callable[[], contextlib.AbstractContextManager[Callable[[], None]]],
    poll_seconds: float,
) -> None:
    """Run trials until the study holds ``n_trials`` that count, all of them finished.

    A trial lost with another worker is failed once its heartbeat is stale and queued
    again; this worker waits for that rather than leave it behind.
    """
    while True:
        fail_stale_trials(study)
        with lock() as release:
            trials = trials_that_count(study.get_trials(deepcopy=False))
            waiting = any(trial.state == TrialState.WAITING for trial in trials)
            if waiting or len(trials) < n_trials:

                def started(trial: optuna.Trial) -> float:
                    release()  # the trial exists now: others may decide on theirs
                    # Optuna records a trial stopped by Ctrl-C as failed, and a failed
                    # trial counts as done; as a SystemExit it stays running, its
                    # heartbeat stops, and the next look at the study runs it again.
                    with exit_130_on_ctrl_c():
                        return objective(trial)

                study.optimize(started, n_trials=1, catch=(Exception,))
                continue
        if all_finished(trials, n_trials):
            return
        time.sleep(poll_seconds)
