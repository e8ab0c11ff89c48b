"""Take the README's screenshot of the drawing page, from the real server in headless Chromium.

Starts ``python -m digits.serve`` on 127.0.0.1 with the given checkpoint, draws a plain
seven (or a scribble) on the canvas with one pointer stroke, waits for the reading and
saves the page::

    python scripts/page_screenshot.py --ckpt_path CKPT --output docs/serve.png
    python scripts/page_screenshot.py --ckpt_path CKPT --shape scribble \
        --output docs/serve_not_sure.png
    python scripts/page_screenshot.py --ckpt_path CKPT --shape spiral --output spiral.png
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from screenshots import chromium, local_server
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# Fractions of the canvas. A seven as most people draw it: one stroke, not crossed.
SHAPES = {
    "seven": [[(0.3, 0.2), (0.7, 0.2), (0.62, 0.38), (0.5, 0.62), (0.44, 0.82)]],
    # A scribble, which the page should decline to read.
    "scribble": [
        [(0.3, 0.5), (0.45, 0.3), (0.5, 0.7), (0.62, 0.35), (0.7, 0.62), (0.4, 0.55), (0.66, 0.45)]
    ],
    # A spiral of two and a half turns: a family no training or choice has seen.
    "spiral": [
        [
            (0.5 + 0.3 * t / 15.7 * math.cos(t), 0.5 + 0.3 * t / 15.7 * math.sin(t))
            for t in (0.6 * step for step in range(27))
        ]
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True)
    parser.add_argument("--output", type=Path, default=Path("docs/serve.png"))
    parser.add_argument("--shape", choices=sorted(SHAPES), default="seven")
    options = parser.parse_args()
    command = [sys.executable, "-m", "digits.serve", "--ckpt_path", options.ckpt_path]
    with local_server(command, "/health") as address:
        browser = chromium(960, 560)
        try:
            browser.get(address + "/")
            canvas = browser.find_element(By.ID, "canvas")
            side = canvas.rect["width"]
            actions = ActionChains(browser)
            for stroke in SHAPES[options.shape]:
                at = [(round((x - 0.5) * side), round((y - 0.5) * side)) for x, y in stroke]
                actions.move_to_element_with_offset(canvas, *at[0]).click_and_hold()
                for point in at[1:]:
                    actions.move_to_element_with_offset(canvas, *point)
                actions.release()
            actions.perform()
            WebDriverWait(browser, 30).until(
                lambda page: (
                    page.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "read"
                )
            )
            time.sleep(0.5)  # the bars' transition
            options.output.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(options.output))
            print(
                f"wrote {options.output}: read as {browser.find_element(By.ID, 'prediction').text}"
            )
        finally:
            browser.quit()


if __name__ == "__main__":
    main()
