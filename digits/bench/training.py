"""Lightning against the tutorial's plain PyTorch loop, measured side by side.

Runs, alternating A B A B on the same machine:

- A: ``python -m digits.tutorial``, the tutorial's loop exactly;
- B: ``python -m digits.fit`` with the default config, as a user runs it: under a
  pseudo-terminal, so the progress bar is drawn, with validation, metrics, TensorBoard
  and checkpoints.

With ``--versus ARGS``, A is ``python -m digits.fit ARGS`` instead: two configs side by
side (a config's own ``max_epochs`` wins over ``--epochs`` when it comes after it).

Each side is timed inside its own run so that start-up stays out of the per-epoch
figures: A records the end of every epoch itself; for B the wall times of the per-epoch
``val/acc`` events in TensorBoard are the clock. The first epoch is left out of both
(warm-up). Whole processes, start-up included, are compared in a second table.
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
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from digits.bench.report import spread
from digits.errors import fail


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


def table(device: str, pairs: list[tuple[Run, Run]], versus: bool = False) -> str:
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
        f"{'':16}{'A digits.fit --versus' if versus else 'A tutorial loop':>28}"
        f"{'B digits.fit':>28}",
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
