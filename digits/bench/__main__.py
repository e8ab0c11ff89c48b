"""``python -m digits.bench``: speed, measured side by side, never asserted.

Usage::

    python -m digits.bench --epochs 50 --repeats 5      # digits.fit against the tutorial's loop
    python -m digits.bench --device all --json
    python -m digits.bench --fit_args '[--config, configs/best.yaml]'   # B with more arguments
    python -m digits.bench --versus '[--config, old.yaml]' --fit_args '[--config, new.yaml]'
    python -m digits.bench --sweep      # one sweep worker against two, trials per minute
    python -m digits.bench --serve      # the server under load, against a constant answer
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from jsonargparse import ArgumentParser, Namespace

from digits.bench.serve import as_json, bench_serve, checkpoint_for_load, serve_table
from digits.bench.sweep import bench_sweep
from digits.bench.training import devices, run_lightning, run_tutorial, table
from digits.errors import reading_the_command_line
from digits.reading.trained import load_trained


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
        "--versus",
        type=list[str] | None,
        default=None,
        help="A is digits.fit with these arguments instead of the tutorial's loop: two "
        "configs side by side, e.g. '[--config, old.yaml]' (compare whole processes then).",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="Instead: a sweep with one worker against two."
    )
    parser.add_argument("--sweep_trials", type=int, default=16, help="Trials per sweep.")
    parser.add_argument("--sweep_folds", type=int, default=5, help="Folds per trial.")
    parser.add_argument(
        "--serve", action="store_true", help="Instead: the server under load, against the floor."
    )
    parser.add_argument(
        "--ckpt_path",
        type=str | None,
        default=None,
        help="--serve's checkpoint (default: train the default run first).",
    )
    parser.add_argument("--serve_clients", type=list[int], default=[1, 32], help="Concurrency.")
    parser.add_argument(
        "--serve_requests",
        type=int,
        default=500,
        help="Requests per run with one client (x4 else).",
    )
    parser.add_argument("--serve_seconds", type=float, default=20.0, help="At most, per run.")
    return parser


def parse_options(args: list[str] | None = None) -> Namespace:
    """The command line, checked: the benchmark needs two epochs and one pair at least."""
    with reading_the_command_line():
        options = parser().parse_args(args)
        if options.epochs < 2 or options.repeats < 1:
            raise ValueError("--epochs must be at least 2 and --repeats at least 1")
        if options.sweep_trials < 2 or options.sweep_folds < 2:
            raise ValueError("--sweep_trials and --sweep_folds must be at least 2")
        if not options.serve_clients or min(options.serve_clients) < 1:
            raise ValueError("--serve_clients must be positive numbers")
        # Fewer would leave too few requests for a median and a 99th percentile.
        if options.serve_requests < 10 or options.serve_seconds < 1:
            raise ValueError("--serve_requests must be at least 10 and --serve_seconds at least 1")
        for fit_args in (options.fit_args, options.versus):
            if fit_args:
                check_fit_args(fit_args)
        if options.ckpt_path is not None:
            load_trained(options.ckpt_path)  # one line if it is not a usable checkpoint
    return options


def check_fit_args(fit_args: list[str]) -> None:
    """Arguments for ``digits.fit`` are read and built as it would, so that a mistake in
    them is one line now rather than a failed run in the middle of the benchmark.

    Imported here: the benchmark itself trains nothing (its runs are processes of their
    own), so it loads Lightning only to read arguments given for them.
    """
    from digits.fit import build
    from digits.training.output import quiet_lightning

    quiet_lightning()
    build(["--trainer.max_epochs", "2", *fit_args])


def serve(options: Namespace) -> dict[str, list[dict]]:
    with tempfile.TemporaryDirectory(prefix="digits-bench-serve-") as scratch:
        ckpt_path = options.ckpt_path or checkpoint_for_load(Path(scratch))
        runs = bench_serve(options, ckpt_path)
    if not options.json:
        print(serve_table(runs), flush=True)
    return {"serve": as_json(runs)}


def main(args: list[str] | None = None) -> dict[str, list[dict]]:
    options = parse_options(args)
    if options.sweep or options.serve:
        results = {"sweep": bench_sweep(options)} if options.sweep else serve(options)
        if options.json:
            print(json.dumps(results, indent=2))
        return results
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="digits-bench-") as log_root:
        for device in devices(options.device):
            pairs = []
            for repeat in range(options.repeats):
                if options.versus is None:
                    first = run_tutorial(options.epochs, device)
                else:
                    first = run_lightning(options.epochs, device, Path(log_root), options.versus)
                pair = (
                    first,
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
                print(table(device, pairs, versus=options.versus is not None), flush=True)
    if options.json:
        print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
