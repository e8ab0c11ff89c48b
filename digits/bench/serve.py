"""The server under load, against the same HTTP stack answering a constant.

For each server (the model, and the floor: ``python -m digits.serve --constant``, the same
LitServe, validation and JSON, without the network), with LitServe's batching off and on,
``clients`` threads on 127.0.0.1 each send ``POST /predict`` with a data set digit over
one keep-alive connection, one request after another. Every run is bounded twice: a
number of requests and a number of seconds. A request counts as lost unless it answers
200 with a digit.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from jsonargparse import Namespace

BATCHING = ["--max_batch_size", "32", "--batch_timeout", "0.002"]


@dataclass(frozen=True)
class LoadRun:
    server: str  # "model" or "floor"
    batching: bool
    clients: int
    requests: int
    lost: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(ckpt_path: str, port: int, options: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "digits.serve", "--ckpt_path", ckpt_path]
    server = subprocess.Popen(
        [*command, "--port", str(port), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            pass
        finally:
            connection.close()
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"python -m digits.serve did not start: {' '.join(options)}")
        time.sleep(0.3)


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=30)


def load(port: int, bodies: list[bytes], clients: int, requests: int, seconds: float) -> dict:
    """Send up to ``requests`` requests from ``clients`` threads for at most ``seconds``."""
    latencies: list[float] = []
    lost = 0
    sent = 0
    guard = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        nonlocal lost, sent
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"}
        while time.monotonic() < deadline:
            with guard:
                if sent >= requests:
                    break
                body = bodies[sent % len(bodies)]
                sent += 1
            started = time.perf_counter()
            try:
                connection.request("POST", "/predict", body=body, headers=headers)
                response = connection.getresponse()
                ok = response.status == 200 and "digit" in json.loads(response.read())
            except (OSError, http.client.HTTPException, ValueError):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            elapsed = time.perf_counter() - started
            with guard:
                latencies.append(elapsed)
                lost += not ok
        connection.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return {
        "requests": len(latencies),
        "lost": lost,
        "seconds": time.perf_counter() - started,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * statistics.quantiles(latencies, n=100)[98],
    }


def bench_serve(options: Namespace, ckpt_path: str) -> list[LoadRun]:
    from digits.dataset import DigitsSplits

    images, _ = DigitsSplits().arrays("test", scaled=False)
    bodies = [json.dumps({"pixels": image.tolist()}).encode() for image in images[:100]]
    runs = []
    for server_name, batching in (
        ("model", False),
        ("model", True),
        ("floor", False),
        ("floor", True),
    ):
        port = free_port()
        flags = (BATCHING if batching else []) + (["--constant"] if server_name == "floor" else [])
        server = start(ckpt_path, port, flags)
        try:
            load(port, bodies, 4, 100, 10)  # warm-up
            for clients in options.serve_clients:
                requests = options.serve_requests * (1 if clients == 1 else 4)
                result = load(port, bodies, clients, requests, options.serve_seconds)
                run = LoadRun(server_name, batching, clients, **result)
                runs.append(run)
                if not options.json:
                    print(
                        f"{server_name:5} batching {'on ' if batching else 'off'} {clients:3} "
                        f"clients: {run.per_second:7.1f} requests/s",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            stop(server)
    return runs


def serve_table(runs: list[LoadRun]) -> str:
    lines = [
        f"{'server':8}{'batching':>9}{'clients':>8}{'requests':>9}{'lost':>6}"
        f"{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
    ]
    for run in runs:
        lines.append(
            f"{run.server:8}{'on' if run.batching else 'off':>9}{run.clients:>8}{run.requests:>9}"
            f"{run.lost:>6}{run.per_second:>9.1f}{run.p50_ms:>9.2f}{run.p99_ms:>9.2f}"
        )
    by = {(run.server, run.batching, run.clients): run for run in runs}
    for batching in (False, True):
        for clients in sorted({run.clients for run in runs}):
            model, floor = (
                by.get(("model", batching, clients)),
                by.get(("floor", batching, clients)),
            )
            if model and floor:
                lines.append(
                    f"model / floor, batching {'on' if batching else 'off'}, {clients} clients: "
                    f"{model.per_second / floor.per_second:.2f} of the floor's requests per second"
                )
    return "\n".join(lines)


def as_json(runs: list[LoadRun]) -> list[dict]:
    return [{**asdict(run), "per_second": run.per_second} for run in runs]


def checkpoint_for_load(folder: Path) -> str:
    """A default 50-epoch run's best checkpoint, trained here, when none was given."""
    command = [sys.executable, "-m", "digits.fit", "--trainer.enable_progress_bar", "false"]
    command += [f"--trainer.logger.init_args.save_dir={folder}"]
    subprocess.run(command, check=True, capture_output=True)
    return str(next(folder.glob("*/version_0/checkpoints/epoch*.ckpt")))
