"""What the screenshot scripts share: headless Chromium and a local server to point it at.

Debian's ``chromium`` and ``chromium-driver``, driven by Selenium (the dev extra).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from digits.bench.serve import free_port

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # as root in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    # No calls home: the machines this runs on may have no network at all.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(width: int, height: int) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [*CHROMIUM_FLAGS, f"--window-size={width},{height}"]:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


@contextlib.contextmanager
def local_server(command: list[str], ready_path: str) -> Iterator[str]:
    """``command`` (given ``--port`` last) on 127.0.0.1 while the block runs; its address.

    Ready once ``ready_path`` answers; stopped with its children at the end.
    """
    port = free_port()
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(address + ready_path, timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(command)} did not start") from None
                time.sleep(0.3)
        yield address
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
