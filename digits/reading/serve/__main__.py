"""Serve a trained checkpoint: a page to draw on, and ``POST /predict`` for programs.

Usage::

    python -m digits.serve --ckpt_path CKPT          # then open http://127.0.0.1:8000
    python -m digits.serve --ckpt_path CKPT --max_batch_size 16 --batch_timeout 0.005

Endpoints: ``GET /`` the page; ``POST /predict`` with ``{"pixels": [64 numbers in
0..16]}`` or ``{"image": "data:image/png;base64,..."}``, answering ``digit``,
``probability``, ``sure`` (the probability reaches the checkpoint's threshold, or
``--threshold``, and the drawing is like the training digits where the checkpoint keeps
that test), ``likeliest`` (the two likeliest digits), ``probabilities`` and
``pixels`` (the 8x8 image the model saw);
``GET /health`` 200 once the model is loaded. A bad request gets a 4xx and
``{"error": "..."}``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket

from jsonargparse import ArgumentParser, Namespace

from digits.errors import reading_the_command_line
from digits.reading.serve.api import ConstantAPI, DigitsAPI
from digits.reading.serve.app import server
from digits.reading.trained import add_threshold_argument, check_threshold, load_trained


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m digits.serve", exit_on_error=False)
    parser.add_argument("--ckpt_path", type=str, required=True, help="A trained checkpoint.")
    parser.add_argument("--host", type=str, default="127.0.0.1", help="Default: this machine only.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="Inference worker processes.")
    parser.add_argument(
        "--max_batch_size", type=int, default=1, help="LitServe's batching: requests per batch."
    )
    parser.add_argument(
        "--batch_timeout", type=float, default=0.0, help="Seconds to wait to fill a batch."
    )
    add_threshold_argument(parser)
    parser.add_argument(
        "--constant",
        action="store_true",
        help="Answer a constant without the model: the floor for python -m digits.bench --serve.",
    )
    return parser


# What LitServe serves on; it refuses anything else only as it starts.
LITSERVE_HOSTS = ("0.0.0.0", "127.0.0.1", "::")
LITSERVE_PORTS = range(1024, 65536)


def check(options: Namespace) -> None:
    """Every mistake found before the server starts, as one line."""
    if options.host not in LITSERVE_HOSTS:
        hosts = ", ".join(LITSERVE_HOSTS[:-1]) + f" or {LITSERVE_HOSTS[-1]}"
        raise ValueError(f"--host must be {hosts} (LitServe's choice), got {options.host}")
    if options.port not in LITSERVE_PORTS:
        raise ValueError(f"--port must be 1024 to 65535 (LitServe's range), got {options.port}")
    if options.workers < 1 or options.max_batch_size < 1:
        raise ValueError("--workers and --max_batch_size must be at least 1")
    if options.batch_timeout < 0:
        raise ValueError(f"--batch_timeout must be 0 or more, got {options.batch_timeout}")
    check_threshold(options.threshold)
    load_trained(options.ckpt_path)  # a missing, corrupt or unsafe checkpoint fails here
    check_port_free(options.host, options.port)


def check_port_free(host: str, port: int) -> None:
    """A port another program holds is the user's to change, said before anything starts.

    Otherwise uvicorn reports it after LitServe has started its workers.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn binds: a port left in TIME_WAIT by a server just stopped is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ValueError(
                f"cannot serve on {host}:{port} ({error.strerror}): {why(error)}"
            ) from None


def why(error: OSError) -> str:
    """What to change, by what the bind said."""
    if error.errno == errno.EADDRINUSE:
        return "another program uses the port; pick another with --port"
    if error.errno == errno.EACCES:
        return "ports below 1024 need root; pick another with --port"
    return "this machine has no such address; check --host"


def stop_on_sigterm() -> None:
    """SIGTERM (``kill PID``, a service manager) stops the server as Ctrl-C does.

    LitServe shuts its HTTP server and inference workers down on KeyboardInterrupt; on
    SIGTERM's default the process would die at once and leave them running, holding the
    port. Its worker processes are forked and inherit the handler: there SIGTERM keeps
    its default meaning, which is how LitServe stops them.
    """
    server_pid = os.getpid()

    def interrupt(signum: int, frame: object) -> None:
        if os.getpid() != server_pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(args: list[str] | None = None) -> None:
    with reading_the_command_line():
        options = parser().parse_args(args)
        check(options)
        kind = ConstantAPI if options.constant else DigitsAPI
        api = kind(
            options.ckpt_path, options.max_batch_size, options.batch_timeout, options.threshold
        )
        litserver = server(api, workers=options.workers)  # it checks the batch_timeout
    logging.getLogger("litserve").setLevel(logging.WARNING)
    print(f"serving {options.ckpt_path} on http://{options.host}:{options.port}", flush=True)
    stop_on_sigterm()
    # Stopped before LitServe is ready to catch it, nothing of it is running yet.
    with contextlib.suppress(KeyboardInterrupt):
        litserver.run(
            host=options.host, port=options.port, generate_client_file=False, log_level="warning"
        )


if __name__ == "__main__":
    main()
