"""One sweep worker against two: trials per minute on the same space and trial count."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from jsonargparse import Namespace

from digits.bench.report import spread

# A fixed space for --sweep: five epochs, so that the median pruner (which waits five
# epochs) never stops a trial and both sides run the same work.
SWEEP_SPACE = """
metric: val/acc
params:
  model.lr: {low: 1.0e-3, high: 1.0e-2, log: true}
  model.network.init_args.hidden_sizes: {choices: [[32], [64], [128]]}
  trainer.max_epochs: {low: 5, high: 5}
"""


@dataclass(frozen=True)
class SweepRun:
    """One sweep command: its workers, its whole time and its trials' own time span."""

    workers: int
    trials: int
    process_seconds: float  # the whole command, start-up included
    trial_seconds: float  # from the first trial's start to the last trial's end

    @property
    def trials_per_minute(self) -> float:
        return 60 * self.trials / self.trial_seconds


def run_sweep(folder: Path, workers: int, trials: int, folds: int, name: str) -> SweepRun:
    import optuna

    space = folder / "space.yaml"
    space.write_text(SWEEP_SPACE)
    command = [sys.executable, "-m", "digits.sweep", "--space", str(space), "--study", name]
    command += ["--trials", str(trials), "--folds", str(folds), "--n_jobs", str(workers)]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    storage = f"sqlite:///{folder / 'sweeps' / name / 'study.db'}"
    study = optuna.load_study(study_name=name, storage=storage)
    done = [trial for trial in study.get_trials() if trial.datetime_complete is not None]
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return SweepRun(workers, len(done), seconds, span.total_seconds())


def sweep_table(pairs: list[tuple[SweepRun, SweepRun]], folds: int) -> str:
    one = [a for a, _ in pairs]
    two = [b for _, b in pairs]
    lines = [
        f"## sweep, {one[0].trials} trials of {folds} folds, {len(pairs)} pairs: median (min..max)",
        f"{'':24}{'1 worker':>24}{'2 workers':>24}",
        f"{'trials per minute':24}{spread([r.trials_per_minute for r in one]):>24}"
        f"{spread([r.trials_per_minute for r in two]):>24}",
        f"{'whole command, s':24}{spread([r.process_seconds for r in one]):>24}"
        f"{spread([r.process_seconds for r in two]):>24}",
        f"{'2/1 trials per minute':24}"
        f"{spread([b.trials_per_minute / a.trials_per_minute for a, b in pairs], digits=2):>48}",
        f"{'1/2 whole command':24}"
        f"{spread([a.process_seconds / b.process_seconds for a, b in pairs], digits=2):>48}",
    ]
    return "\n".join(lines)


def bench_sweep(options: Namespace) -> list[dict]:
    """One worker against two on the same space and trial count, alternately."""
    pairs = []
    with tempfile.TemporaryDirectory(prefix="digits-bench-sweep-") as scratch:
        for repeat in range(options.repeats):
            sizes = (options.sweep_trials, options.sweep_folds)
            pair = tuple(
                run_sweep(Path(scratch), workers, *sizes, name=f"w{workers}-{repeat}")
                for workers in (1, 2)
            )
            pairs.append(pair)
            if not options.json:
                a, b = pair
                print(
                    f"sweep pair {repeat + 1}/{options.repeats}: 1 worker "
                    f"{a.trials_per_minute:.1f}, 2 workers {b.trials_per_minute:.1f} trials/min",
                    file=sys.stderr,
                    flush=True,
                )
    if not options.json:
        print(sweep_table(pairs, options.sweep_folds), flush=True)
    return [{"one": asdict(a), "two": asdict(b)} for a, b in pairs]
