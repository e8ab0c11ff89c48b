"""Take the README's TensorBoard screenshot from TensorBoard's real page.

Trains the default run (``python -m digits.fit``) into a temporary folder, serves it with
``tensorboard`` on 127.0.0.1, opens the page in headless Chromium through Selenium and
saves what it shows. Needs Debian's ``chromium`` and ``chromium-driver`` and the test
extra (Selenium)::

    python scripts/tensorboard_screenshot.py --output docs/tensorboard.png
    python scripts/tensorboard_screenshot.py --logdir lightning_logs --output shot.png
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from screenshots import chromium, local_server
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait


def screenshot(address: str, output: Path, tag_filter: str) -> None:
    browser = chromium(1280, 1100)
    try:
        browser.get(f"{address}/?tagFilter={tag_filter}#timeseries")
        wait = WebDriverWait(browser, 60)
        # One card per scalar, each drawing its line chart.
        wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "svg path")))
        # The settings pane opens on wide windows; the curves need the room.
        for button in browser.find_elements(By.XPATH, "//button[contains(., 'Settings')]"):
            if button.is_displayed():
                button.click()
        time.sleep(3)  # the charts animate in
        output.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(output))
    finally:
        browser.quit()


def train_default_run(folder: Path) -> Path:
    logs = folder / "lightning_logs"
    command = [sys.executable, "-m", "digits.fit", "--trainer.enable_progress_bar", "false"]
    command += [f"--trainer.logger.init_args.save_dir={logs}"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return logs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, help="Logs to show (default: train a run now).")
    parser.add_argument("--output", type=Path, default=Path("docs/tensorboard.png"))
    parser.add_argument(
        "--tag_filter", default="(train|val)/(acc|loss)$", help="Which scalars (a regex)."
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        logdir = options.logdir or train_default_run(Path(scratch))
        command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
        with local_server([*command, "--host", "127.0.0.1"], "/data/runs") as address:
            screenshot(address, options.output, options.tag_filter)
    print(f"wrote {options.output}")


if __name__ == "__main__":
    main()
