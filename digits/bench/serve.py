"""The server under load, against the same HTTP stack answering a constant.

For each server (the model, and the floor: ``python -m digits.serve --constant``, the same
LitServe, validation and JSON, without the network), with LitServe's batching off and on,
``clients`` threads on 127.0.0.1 each send ``POST /predict`` with a data set digit's
``"pixels"`` over one keep-alive connection, one request after another. Then the model
with one and with two inference workers is sent the same digits as the page sends them:
``"image"``, a 280x280 PNG, which costs more to decode than the network to read. Every
run is bounded twice: a number of requests and a number of seconds. A request counts as
lost unless it answers 200 with a digit. Each run also says where the server spent its
CPU time, per request: in its inference workers, and in the rest of it (the HTTP server
and LitServe's queue between them), from Linux's ``/proc``.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
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

import numpy as np
from jsonargparse import Namespace

BATCHING = ["--max_batch_size", "32", "--batch_timeout", "0.002"]
# (server, body, inference workers, batching), one server started for each.
SERVERS = [
    ("model", "pixels", 1, False),
    ("model", "pixels", 1, True),
    ("floor", "pixels", 1, False),
    ("floor", "pixels", 1, True),
    ("model", "png", 1, False),
    ("model", "png", 2, False),
]


@dataclass(frozen=True)
class LoadRun:
    server: str  # "model" or "floor"
    body: str  # "pixels" or "png"
    workers: int
    batching: bool
    clients: int
    requests: int
    lost: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float  # CPU time per request of the server's processes but its workers
    workers_cpu_ms: float  # and of its inference workers

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


def cpu_seconds(root: int) -> dict[str, float]:
    """CPU seconds used so far by a server's processes: its inference workers, and the rest.

    LitServe spawns the workers (``spawn_main`` in their command line) and forks the rest.
    """
    parents: dict[int, int] = {}
    for path in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parents[int(path.name)] = int((path / "stat").read_text().rsplit(")", 1)[1].split()[1])
    family, found = [root], [root]
    while found:
        found = [pid for pid, parent in parents.items() if parent in found]
        family += found
    used = {"server": 0.0, "workers": 0.0}
    for pid in family:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            spawned = b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
            ticks = int(fields[11]) + int(fields[12])  # user and system time
            used["workers" if spawned else "server"] += ticks / os.sysconf("SC_CLK_TCK")
    return used


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


def png_body(pixels: np.ndarray, side: int = 280) -> bytes:
    """A data set digit as the page sends it: dark ink on white, a ``side``-pixel PNG."""
    from PIL import Image

    ink = (pixels.reshape(8, 8) / 16 * 255).astype(np.uint8)
    png = io.BytesIO()
    Image.fromarray(255 - ink).resize((side, side)).convert("RGBA").save(png, "PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    return json.dumps({"image": url}).encode()


def bench_serve(options: Namespace, ckpt_path: str) -> list[LoadRun]:
    from digits.dataset import DigitsSplits

    images, _ = DigitsSplits().arrays("test", scaled=False)
    bodies = {
        "pixels": [json.dumps({"pixels": image.tolist()}).encode() for image in images[:100]],
        "png": [png_body(image) for image in images[:100]],
    }
    runs = []
    for server_name, body, workers, batching in SERVERS:
        port = free_port()
        flags = (BATCHING if batching else []) + (["--constant"] if server_name == "floor" else [])
        server = start(ckpt_path, port, [*flags, "--workers", str(workers)])
        try:
            load(port, bodies[body], 4, 100, 10)  # warm-up
            for clients in options.serve_clients:
                requests = options.serve_requests * (1 if clients == 1 else 4)
                used = cpu_seconds(server.pid)
                result = load(port, bodies[body], clients, requests, options.serve_seconds)
                cpu_ms = {
                    f"{kind}_cpu_ms": 1000 * (seconds - used[kind]) / result["requests"]
                    for kind, seconds in cpu_seconds(server.pid).items()
                }
                run = LoadRun(server_name, body, workers, batching, clients, **result, **cpu_ms)
                runs.append(run)
                if not options.json:
                    print(
                        f"{server_name:5} {body:6} workers {workers} "
                        f"batching {'on ' if batching else 'off'} {clients:3} "
                        f"clients: {run.per_second:7.1f} requests/s",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            stop(server)
    return runs


def serve_table(runs: list[LoadRun]) -> str:
    lines = [
        f"{'server':8}{'body':>7}{'workers':>8}{'batching':>9}{'clients':>8}{'requests':>9}"
        f"{'lost':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms: server':>15}{'workers':>8}"
    ]
    for run in runs:
        lines.append(
            f"{run.server:8}{run.body:>7}{run.workers:>8}{'on' if run.batching else 'off':>9}"
            f"{run.clients:>8}{run.requests:>9}{run.lost:>6}{run.per_second:>9.1f}"
            f"{run.p50_ms:>9.2f}{run.p99_ms:>9.2f}{run.server_cpu_ms:>15.2f}{run.workers_cpu_ms:>8.2f}"
        )
    pixels = [run for run in runs if run.body == "pixels" and run.workers == 1]
    by = {(run.server, run.batching, run.clients): run for run in pixels}
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
    png = {(run.workers, run.clients): run for run in runs if run.body == "png"}
    for clients in sorted({run.clients for run in runs}):
        one, two = png.get((1, clients)), png.get((2, clients))
        if one and two:
            lines.append(
                f"png, 2 workers / 1, {clients} clients: "
                f"{two.per_second / one.per_second:.2f} of one worker's requests per second"
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
