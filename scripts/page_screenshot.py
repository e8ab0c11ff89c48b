"""Take the README's screenshot of the drawing page, from the real server in headless Chromium.

Starts ``python -m digits.serve`` on 127.0.0.1 with the given checkpoint, draws a seven on
the canvas with pointer strokes, waits for the reading and saves the page::

    python scripts/page_screenshot.py --ckpt_path CKPT --output docs/serve.png
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from headless import chromium
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# A seven as the data set's writers drew it: crossed (fractions of the canvas).
SEVEN = [
    [(0.28, 0.2), (0.72, 0.2), (0.56, 0.5), (0.44, 0.82)],
    [(0.38, 0.5), (0.72, 0.5)],
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True)
    parser.add_argument("--output", type=Path, default=Path("docs/serve.png"))
    options = parser.parse_args()
    port = free_port()
    command = [sys.executable, "-m", "digits.serve", "--ckpt_path", options.ckpt_path]
    server = subprocess.Popen([*command, "--port", str(port)], start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.3)
        browser = chromium(960, 560)
        try:
            browser.get(f"http://127.0.0.1:{port}/")
            canvas = browser.find_element(By.ID, "canvas")
            side = canvas.rect["width"]
            actions = ActionChains(browser)
            for stroke in SEVEN:
                at = [(round((x - 0.5) * side), round((y - 0.5) * side)) for x, y in stroke]
                actions.move_to_element_with_offset(canvas, *at[0]).click_and_hold()
                for point in at[1:]:
                    actions.move_to_element_with_offset(canvas, *point)
                actions.release()
            actions.perform()
            WebDriverWait(browser, 30).until(
                lambda page: page.find_element(By.ID, "prediction").text.strip()
            )
            time.sleep(0.5)  # the bars' transition
            options.output.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(options.output))
            print(
                f"wrote {options.output}: read as {browser.find_element(By.ID, 'prediction').text}"
            )
        finally:
            browser.quit()
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


if __name__ == "__main__":
    main()
