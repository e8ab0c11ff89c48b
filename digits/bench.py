"""Lightning against the tutorial's plain PyTorch loop, measured side by side.

Runs, alternating A B A B on the same machine:

- A: ``python -m digits.tutorial``, the tutorial's loop exactly;
- B: ``python -m digits.fit`` with the default config, as a user runs it: under a
  pseudo-terminal, so the progress bar is drawn, with validation, metrics, TensorBoard
  and checkpoints.

Each side is timed inside its own run so that start-up stays out of the per-epoch
figures: A records the end of every epoch itself; for B the wall times of the per-epoch
``val/acc`` events in TensorBoard are the clock. The first epoch is left out of both
(warm-up). Whole processes, start-up included, are compared in a second table.

Usage::

    python -m digits.bench --epochs 50 --repeats 5
    python -m digits.bench --device all --json
    python -m digits.bench --fit_args '[--config, configs/best.yaml]'   # B with more arguments
    python -m digits.bench --sweep      # one sweep worker against two, trials per minute
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

from jsonargparse import ArgumentParser, Namespace
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from digits.errors import exit_on_user_error, fail


@dataclass(frozen=True)
class Run:
    """One side of one pair: what a single process did."""

    side: str
    epoch_seconds: float  # median over epochs 2..N
    process_seconds: float  # the whole process, start-up included
    test_acc: float
    peak_rss_mib: float
    terminal_bytes: int  # what it drew on the terminal


def run_in_terminal(command: list[str]) -> tuple[bytes, float, float]:
    """Run a command under a pseudo-terminal; return its output, wall seconds, peak RSS MiB."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        close_fds=True,
        env={**os.environ, "TERM": os.environ.get("TERM", "xterm")},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    os.close(master)
    output = b"".join(chunks)
    if os.waitstatus_to_exitcode(status) != 0:
        tail = output.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(command)} failed:\n{tail}")
    return output, seconds, usage.ru_maxrss / 1024


def run_tutorial(epochs: int, device: str) -> Run:
    command = [sys.executable, "-m", "digits.tutorial", "--epochs", str(epochs)]
    output, seconds, rss = run_in_terminal([*command, "--device", device])
    result = json.loads(output.decode().strip().splitlines()[-1])
    return Run(
        side="tutorial",
        epoch_seconds=statistics.median(result["epoch_seconds"][1:]),
        process_seconds=seconds,
        test_acc=result["test_acc"],
        peak_rss_mib=rss,
        terminal_bytes=len(output),
    )


def run_lightning(epochs: int, device: str, log_root: Path, fit_args: list[str]) -> Run:
    save_dir = Path(tempfile.mkdtemp(dir=log_root))
    accelerator = "gpu" if device.startswith("cuda") else "cpu"
    command = [sys.executable, "-m", "digits.fit", "--trainer.max_epochs", str(epochs)]
    command += ["--trainer.accelerator", accelerator]
    command += [f"--trainer.logger.init_args.save_dir={save_dir}", *fit_args]
    output, seconds, rss = run_in_terminal(command)
    (run_dir,) = save_dir.glob("*/version_*")
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    ends = [event.wall_time for event in events.Scalars("val/acc")]
    return Run(
        side="lightning",
        epoch_seconds=statistics.median(b - a for a, b in pairwise(ends)),
        process_seconds=seconds,
        test_acc=events.Scalars("test/acc")[-1].value,
        peak_rss_mib=rss,
        terminal_bytes=len(output),
    )


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """median (min..max), the way every cell of the tables reads."""
    median, low, high = (scale * f(values) for f in (statistics.median, min, max))
    return f"{median:.{digits}f} ({low:.{digits}f}..{high:.{digits}f})"


def table(device: str, pairs: list[tuple[Run, Run]]) -> str:
    tutorial = [a for a, _ in pairs]
    lightning = [b for _, b in pairs]
    epoch_ratio = [b.epoch_seconds / a.epoch_seconds for a, b in pairs]
    process_ratio = [b.process_seconds / a.process_seconds for a, b in pairs]
    rows = [
        ("ms per epoch", "epoch_seconds", 1000.0, 1),
        ("test accuracy", "test_acc", 1.0, 4),
        ("peak RSS MiB", "peak_rss_mib", 1.0, 0),
        ("terminal KiB", "terminal_bytes", 1 / 1024, 1),
    ]
    lines = [
        f"## per epoch, {device}, {len(pairs)} pairs: median (min..max)",
        f"{'':16}{'A tutorial loop':>28}{'B digits.fit':>28}",
    ]
    for label, field, scale, digits in rows:
        a = spread([getattr(run, field) for run in tutorial], scale, digits)
        b = spread([getattr(run, field) for run in lightning], scale, digits)
        lines.append(f"{label:16}{a:>28}{b:>28}")
    lines.append(f"{'B/A per epoch':16}{spread(epoch_ratio, digits=2):>56}")
    lines += [
        "",
        f"## whole process, start-up included, {device}",
        f"{'seconds':16}{spread([r.process_seconds for r in tutorial], digits=2):>28}"
        f"{spread([r.process_seconds for r in lightning], digits=2):>28}",
        f"{'B/A process':16}{spread(process_ratio, digits=2):>56}",
    ]
    return "\n".join(lines)


def devices(choice: str) -> list[str]:
    import torch  # only here: the benchmark itself should start fast

    has_cuda = torch.cuda.is_available()
    if choice == "all":
        return ["cpu", "cuda"] if has_cuda else ["cpu"]
    if choice == "cuda" and not has_cuda:
        raise fail("--device cuda asked for, but torch finds no CUDA GPU here")
    return [choice]


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


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m digits.bench", exit_on_error=False)
    parser.add_argument("--epochs", type=int, default=50, help="Epochs per run (default 50).")
    parser.add_argument("--repeats", type=int, default=3, help="A/B pairs per device.")
    parser.add_argument("--device", type=Literal["cpu", "cuda", "all"], default="all")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead.")
    parser.add_argument(
        "--fit_args",
        type=list[str],
        default=[],
        help="More digits.fit arguments for B, e.g. '[--config, configs/best.yaml]'.",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="Instead: a sweep with one worker against two."
    )
    parser.add_argument("--sweep_trials", type=int, default=16, help="Trials per sweep.")
    parser.add_argument("--sweep_folds", type=int, default=5, help="Folds per trial.")
    return parser


def parse_options(args: list[str] | None = None) -> Namespace:
    """The command line, checked: the benchmark needs two epochs and one pair at least."""
    with exit_on_user_error():
        options = parser().parse_args(args)
        if options.epochs < 2 or options.repeats < 1:
            raise ValueError("--epochs must be at least 2 and --repeats at least 1")
        if options.sweep_trials < 2 or options.sweep_folds < 2:
            raise ValueError("--sweep_trials and --sweep_folds must be at least 2")
    return options


def main(args: list[str] | None = None) -> dict[str, list[dict]]:
    options = parse_options(args)
    if options.sweep:
        results = {"sweep": bench_sweep(options)}
        if options.json:
            print(json.dumps(results, indent=2))
        return results
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="digits-bench-") as log_root:
        for device in devices(options.device):
            pairs = []
            for repeat in range(options.repeats):
                pair = (
                    run_tutorial(options.epochs, device),
                    run_lightning(options.epochs, device, Path(log_root), options.fit_args),
                )
                pairs.append(pair)
                if not options.json:
                    a, b = pair
                    print(
                        f"{device} pair {repeat + 1}/{options.repeats}: "
                        f"A {1000 * a.epoch_seconds:.1f} ms/epoch, "
                        f"B {1000 * b.epoch_seconds:.1f} ms/epoch",
                        file=sys.stderr,
                        flush=True,
                    )
            results[device] = [{"tutorial": asdict(a), "lightning": asdict(b)} for a, b in pairs]
            if not options.json:
                print(table(device, pairs), flush=True)
    if options.json:
        print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
