"""python -m digits.serve as a real server on 127.0.0.1, with real HTTP and a real browser."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits.bench.serve import free_port
from digits.people.non_digits import MEASURING_SEED, non_digits
from digits.people.pen_digits import (
    CANVAS_SIDE,
    PAGE_PEN,
    DrawnSplits,
    Hand,
    drawn_pixels,
    hands,
    page_path,
    read_pen_digits,
)
from digits.reading.predict import main as predict
from digits.reading.serve.__main__ import main as serve_main
from digits.reading.trained import load_trained
from tests.conftest import (
    children,
    cmdline,
    ctrl_c_as_in_a_terminal,
    split_for_testing,
    tiff_with_text_strip_offsets,
)


class Server:
    """A ``python -m digits.serve`` process and plain HTTP requests to it."""

    def __init__(self, ckpt_path: Path, *options: str, port: int | None = None) -> None:
        self.port = port or free_port()
        command = [sys.executable, "-m", "digits.serve", "--ckpt_path", str(ckpt_path)]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its worker processes go with it
            preexec_fn=ctrl_c_as_in_a_terminal,
        )
        deadline = time.monotonic() + 90
        while self.request("GET", "/health", quiet=True)[0] != 200:
            assert self.process.poll() is None, self.process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the server never became healthy"
            time.sleep(0.3)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        quiet: bool = False,
        timeout: float = 30,
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except OSError:
            if quiet:
                return 0, b""
            raise
        finally:
            connection.close()

    def predict(self, payload: object) -> tuple[int, dict]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        status, answer = self.request("POST", "/predict", body)
        return status, json.loads(answer)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(trained_standard: Path) -> Iterator[Server]:
    running = Server(trained_standard)
    yield running
    running.stop()


def png_data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def drawn(pixels: np.ndarray, path: Path, size: int = 120) -> Path:
    """A data set digit as dark ink on white paper, blown up as a drawing would be."""
    ink = (pixels.reshape(8, 8) / 16 * 255).astype(np.uint8)
    Image.fromarray(255 - ink).resize((size, size)).save(path)
    return path


def test_health_page_and_a_reading(server: Server, trained_standard: Path):
    assert server.request("GET", "/health")[0] == 200
    status, page = server.request("GET", "/")
    text = page.decode()
    assert status == 200 and 'id="canvas"' in text and 'id="prediction"' in text
    assert "://" not in text.replace("http://www.w3.org", "")  # nothing from elsewhere
    images, _ = split_for_testing(trained_standard)
    status, answer = server.predict({"pixels": images[0].tolist()})
    keys = {"digit", "probability", "sure", "likeliest", "unfamiliar", "probabilities", "pixels"}
    assert status == 200 and set(answer) == keys
    assert answer["digit"] == int(np.argmax(answer["probabilities"]))
    assert answer["probability"] == max(answer["probabilities"])
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-5)
    assert np.allclose(np.array(answer["pixels"]).reshape(64), images[0], atol=1e-3)
    # The checkpoint's calibration: its probabilities, and sure from its threshold on.
    trained = load_trained(trained_standard)
    _, (reading,) = trained.readings(images[:1])
    assert answer["probability"] == pytest.approx(reading.probability, abs=1e-6)
    assert answer["sure"] == reading.sure and answer["likeliest"] == list(reading.likeliest)
    assert answer["unfamiliar"] is False  # a checkpoint without the neighbour test


BAD_REQUESTS = [
    (b"{not json", 400, "the body is not valid JSON"),
    ({"pixel": [0] * 64}, 422, 'unknown key "pixel"'),
    ({}, 422, 'send either "pixels"'),
    ([0] * 64, 422, "the body must be a JSON object"),
    ({"pixels": [0] * 63}, 422, "shape (63,)"),
    ({"pixels": [0] * 63 + [None]}, 422, "pixels must be numbers"),
    (b'{"pixels": [' + b",".join([b"NaN"] * 64) + b"]}", 422, "finite numbers"),
    (b'{"pixels": [' + b",".join([b"3"] * 63 + [b"NaN"]) + b"]}", 422, "finite numbers"),
    (b'{"pixels": [' + b",".join([b"Infinity"] * 64) + b"]}", 422, "finite numbers"),
    ({"pixels": [17] * 64}, 422, "values outside 0..16"),
    ({"pixels": [-1] * 64}, 422, "values outside 0..16"),
    ({"image": "data:image/png;base64,@@@"}, 422, "not valid base64"),
    (
        {"image": "data:image/png;base64," + base64.b64encode(b"hello").decode()},
        422,
        "not an image",
    ),
    ({"image": ""}, 422, "the image is empty"),
    ({"image": "data:image/png;base64,"}, 422, "the image is empty"),
    ({"image": 7}, 422, '"image" must be a string'),
]


@pytest.mark.parametrize(("payload", "status", "message"), BAD_REQUESTS)
def test_bad_input_is_a_4xx_with_a_one_line_json_error(server: Server, payload, status, message):
    got, answer = server.predict(payload)
    assert got == status
    assert set(answer) == {"error"} and message in answer["error"]
    assert "\n" not in answer["error"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/nowhere", None, 404, "Not Found"),
        ("GET", "/predict", None, 405, "Method Not Allowed"),
        ("POST", "/predict", b'{"pixels": "\xff"}', 400, "error parsing the body"),
    ],
)
def test_what_the_server_does_not_serve_is_a_json_error_too(
    server: Server, method: str, path: str, body: bytes | None, status: int, message: str
):
    got, body = server.request(method, path, body)
    answer = json.loads(body)
    assert got == status
    assert set(answer) == {"error"} and message in answer["error"]


def test_a_method_not_allowed_says_which_are(server: Server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", "/predict")
        response = connection.getresponse()
        assert response.status == 405
        assert response.getheader("Allow") == "POST"  # RFC 9110 asks a 405 to say so
    finally:
        connection.close()


def test_a_blank_drawing_is_refused(server: Server, tmp_path: Path):
    Image.new("RGBA", (200, 200), (0, 0, 0, 0)).save(tmp_path / "blank.png")  # a cleared canvas
    status, answer = server.predict({"image": png_data_url(tmp_path / "blank.png")})
    assert (status, answer) == (422, {"error": "no ink found: the image is blank"})


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of under a hundred bytes whose header says ``width`` x ``height``, rows cut short."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    rows = zlib.compress(b"\x00" + b"\x80" * min(width, 1000))  # one row, or part of one
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def as_data_url(data: bytes) -> dict[str, str]:
    return {"image": "data:image/png;base64," + base64.b64encode(data).decode()}


def a_drawn_png(pixels: np.ndarray, tmp_path: Path) -> bytes:
    return drawn(pixels, tmp_path / "digit.png").read_bytes()


HOSTILE_IMAGES = {
    # Pillow itself refuses it on opening, with DecompressionBombError (no ValueError).
    "20000x20000": (png_claiming(20000, 20000), "the image is larger than 4096x4096"),
    "12000x12000": (png_claiming(12000, 12000), "the image is 12000x12000; at most 4096x4096"),
    # Under Pillow's threshold, yet 81 million pixels to decode: refused from the header.
    "9000x9000": (png_claiming(9000, 9000), "the image is 9000x9000; at most 4096x4096"),
    # Within the bound, its pixel rows missing: decoding stops at the end of the data.
    "4000x4000 cut short": (png_claiming(4000, 4000), "not an image"),
    "a PNG cut in half": (None, "not an image"),
    "a PNG header alone": (b"\x89PNG\r\n\x1a\n", "not an image"),
    # Pillow fails on it with a TypeError, not one of its "not an image" errors.
    "a TIFF whose strip offsets are text": (tiff_with_text_strip_offsets(), "not an image"),
}


@pytest.mark.parametrize("name", list(HOSTILE_IMAGES))
def test_a_hostile_image_gets_a_4xx_json_error_and_the_server_goes_on(
    server: Server, trained_standard: Path, tmp_path: Path, name: str
):
    images, _ = split_for_testing(trained_standard)
    good = as_data_url(a_drawn_png(images[0], tmp_path))
    before = server.predict(good)
    data, message = HOSTILE_IMAGES[name]
    if data is None:
        whole = a_drawn_png(images[1], tmp_path)
        data = whole[: len(whole) // 2]
    status, body = server.request("POST", "/predict", json.dumps(as_data_url(data)).encode())
    assert status == 422, body
    answer = json.loads(body)
    assert set(answer) == {"error"}
    assert message in answer["error"] and "\n" not in answer["error"]
    # The server goes on serving, and reads the same drawing as before.
    after = server.predict(good)
    assert after[0] == 200 and after == before


def raw_post(port: int, head: bytes, chunks: list[bytes]) -> bytes:
    """Send a request by hand, as much of it as the server takes; return what it answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for chunk in chunks:
                connection.sendall(chunk)
        reply = b""
        with contextlib.suppress(ConnectionResetError):
            while not complete(reply) and (data := connection.recv(65536)):
                reply += data
    return reply


def complete(reply: bytes) -> bool:
    """Whether a response's head and its Content-Length of body have arrived."""
    head, separator, body = reply.partition(b"\r\n\r\n")
    if not separator:
        return False
    lengths = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")]
    return bool(lengths) and len(body) >= int(lengths[0].split(b":")[1])


def test_a_body_over_the_limit_gets_a_413_every_client_can_read(server: Server):
    """urllib and http.client send the whole body before reading: they get the 413 too."""
    url = f"http://127.0.0.1:{server.port}/predict"
    twenty_mb = b'{"pixels": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    request = urllib.request.Request(
        url, data=twenty_mb, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413
    error = json.loads(refused.value.read())
    assert error == {"error": f"the body is {len(twenty_mb)} bytes; at most 2 MB"}
    # A chunked body, with no declared length: refused once it passes 2 MB.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    chunks = (b"x" * (256 * 1024) for _ in range(40))  # 10 MB
    connection.request("POST", "/predict", body=chunks, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read()) == {"error": "the body is longer; at most 2 MB"}
    connection.close()
    # A client that asks before sending is answered at once, without sending anything.
    reply = raw_post(server.port, b"Content-Length: 50000000\r\nExpect: 100-continue\r\n", [])
    assert reply.startswith(b"HTTP/1.1 413")
    assert reply.endswith(b'{"error":"the body is 50000000 bytes; at most 2 MB"}')
    assert server.predict({"pixels": [8] * 64})[0] == 200  # and it goes on serving


def test_the_server_agrees_with_predict_on_the_same_files(
    server: Server, trained_standard: Path, tmp_path: Path
):
    images, _ = split_for_testing(trained_standard)
    np.save(tmp_path / "rows.npy", images[:10])
    pngs = [drawn(image, tmp_path / f"{n}.png") for n, image in enumerate(images[10:20])]
    files = [str(tmp_path / "rows.npy"), *map(str, pngs)]
    offline = predict(["--ckpt_path", str(trained_standard), *files])
    online = [server.predict({"pixels": image.tolist()})[1] for image in images[:10]]
    online += [server.predict({"image": png_data_url(png)})[1] for png in pngs]
    assert [answer["digit"] for answer in online] == [p.digit for p in offline]
    assert [answer["probability"] for answer in online] == pytest.approx(
        [p.probability for p in offline], abs=1e-5
    )


def descendants(pid: int) -> list[int]:
    found = children(pid)
    return found + [grandchild for child in found for grandchild in descendants(child)]


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.slow
def test_a_signal_to_the_server_process_alone_stops_all_of_it(trained_standard: Path, sent):
    running = Server(trained_standard)
    family = descendants(running.process.pid)
    assert family, "LitServe runs its HTTP server and inference worker as processes"
    running.process.send_signal(sent)  # the process alone, as kill PID does
    assert running.process.wait(timeout=60) == 0
    deadline = time.monotonic() + 30
    while any(cmdline(pid) for pid in family):
        assert time.monotonic() < deadline, "a process of the server outlived it"
        time.sleep(0.2)
    with socket.socket() as probe:  # the port is free again...
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", running.port))
    if sent != signal.SIGTERM:
        return  # (starting again once is enough)
    again = Server(trained_standard, port=running.port)  # ...and a new server takes it
    try:
        assert again.request("GET", "/health")[0] == 200
    finally:
        again.stop()


def inference_workers(server: Server) -> list[int]:
    return [pid for pid in children(server.process.pid) if b"spawn_main" in cmdline(pid)]


def test_a_crashed_inference_worker_does_not_take_the_server_down(server: Server):
    (worker,) = inference_workers(server)
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while inference_workers(server) in ([], [worker]):  # LitServe starts another
        assert time.monotonic() < deadline, "no new inference worker"
        time.sleep(0.2)
    # A request that reached the worker as it died may never be answered (LitServe
    # restarts the worker, not its requests): ask again until the new one answers.
    body = json.dumps({"pixels": [8] * 64}).encode()
    while (answer := server.request("POST", "/predict", body, quiet=True, timeout=5))[0] != 200:
        assert time.monotonic() < deadline, f"the server stopped answering: {answer}"
        time.sleep(0.5)
    assert json.loads(answer[1])["digit"] in range(10)
    assert server.predict({"pixels": [99] * 64})[0] == 422  # and still refuses as before


def test_batched_requests_each_get_their_own_answer(trained_standard: Path, tmp_path: Path):
    """Good and bad requests, pixels and images, sent at once to be batched together."""
    from concurrent.futures import ThreadPoolExecutor

    images, _ = split_for_testing(trained_standard)
    good = [{"pixels": image.tolist()} for image in images[:24]]
    good += [as_data_url(a_drawn_png(image, tmp_path)) for image in images[24:32]]
    bad = [{"pixels": [99] * 64}] * 4  # refused in the HTTP server
    bad += [as_data_url(data) for data, _ in HOSTILE_IMAGES.values() if data]  # in the worker
    bad += [as_data_url(b"hello"), {"image": "data:image/png;base64,@@@"}]
    order = np.random.default_rng(0).permutation(len(good) + len(bad))  # bad among good
    payloads = [(good + bad)[n] for n in order]
    batching = Server(trained_standard, "--max_batch_size", "16", "--batch_timeout", "0.05")
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(batching.predict, payloads))
        single = [batching.predict(payload) for payload in good]
    finally:
        batching.stop()
    statuses = [200 if n < len(good) else 422 for n in order]
    assert [status for status, _ in answers] == statuses  # a bad one fails alone
    batched = dict(zip(order.tolist(), (answer for _, answer in answers), strict=True))
    assert [batched[n]["digit"] for n in range(len(good))] == [a["digit"] for _, a in single]
    assert [batched[n]["probability"] for n in range(len(good))] == pytest.approx(
        [a["probability"] for _, a in single], abs=1e-5
    )


# The page, in a real headless Chromium ------------------------------------------------


def draw(browser, strokes: list[list[tuple[float, float]]]) -> None:
    """Pointer strokes on the canvas, in fractions of its size."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = browser.find_element(By.ID, "canvas")
    side = canvas.rect["width"]
    actions = ActionChains(browser)
    for stroke in strokes:
        (x, y), rest = stroke[0], stroke[1:]
        actions.move_to_element_with_offset(
            canvas, round((x - 0.5) * side), round((y - 0.5) * side)
        )
        actions.click_and_hold()
        for x, y in rest:
            actions.move_to_element_with_offset(
                canvas, round((x - 0.5) * side), round((y - 0.5) * side)
            )
        actions.release()
    actions.perform()


def test_a_digit_drawn_on_the_page_is_read_as_the_server_reads_its_pixels(
    server: Server, browser, tmp_path: Path
):
    from selenium.webdriver.common.by import By

    browser.get(f"http://127.0.0.1:{server.port}/")
    draw(browser, [[(0.3, 0.25), (0.7, 0.25), (0.5, 0.55), (0.42, 0.8)]])  # a seven
    # Waits until the page says it has read the latest drawing: the text and
    # window.lastReading are then the answer for the whole stroke, not for a part of it.
    prediction, unsure = shown(browser)
    reading = browser.execute_script("return window.lastReading")
    first, second = reading["likeliest"]
    assert unsure != reading["sure"]
    assert prediction == (str(reading["digit"]) if reading["sure"] else f"{first} or {second}?")
    status, answer = server.predict({"pixels": reading["pixels"]})
    assert status == 200 and answer["digit"] == reading["digit"]
    # The ten bars, the top one marked; the 8x8 image the model saw, drawn with ink.
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar")
    assert len(bars) == 10 and "top" in bars[reading["digit"]].get_attribute("class")
    ink = browser.execute_script(
        "const d = document.getElementById('seen').getContext('2d').getImageData(0, 0, 8, 8).data;"
        "let dark = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) dark++; return dark;"
    )
    assert 0 < ink < 64
    shot = tmp_path / "page.png"
    browser.save_screenshot(str(shot))
    assert np.asarray(Image.open(shot).convert("L")).std() > 10

    browser.find_element(By.ID, "clear").click()
    assert browser.find_element(By.ID, "prediction").text == ""
    # A body over the limit from the browser's fetch: the 413 and its JSON arrive.
    refused = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('predict', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: 'x'.repeat(20 * 1024 * 1024)})"
        ".then(r => r.json().then(j => done([r.status, j]))).catch(e => done(String(e)));"
    )
    assert refused == [413, {"error": "the body is 20971520 bytes; at most 2 MB"}]
    # On a phone-sized screen the whole canvas is in view, nothing wider than the screen.
    browser.set_window_size(390, 844)
    width = browser.execute_script("return document.documentElement.clientWidth")
    canvas = browser.find_element(By.ID, "canvas").rect
    assert canvas["x"] >= 0 and canvas["x"] + canvas["width"] <= width
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width


REPLAYED_PER_DIGIT = 2  # pen digits replayed on the page, of each digit
PAGE_FLOOR = 0.8  # a model that never saw drawn digits reads about 0.4-0.7 of them


def replay(browser, points, hand) -> None:
    """One pen digit drawn on the page as a hand would move: one stroke through its points."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = browser.find_element(By.ID, "canvas")
    to_css = canvas.rect["width"] / CANVAS_SIDE  # the canvas's own pixels to the page's
    path = [
        (round((x - CANVAS_SIDE / 2) * to_css), round((y - CANVAS_SIDE / 2) * to_css))
        for x, y in page_path(points, hand)
    ]
    actions = ActionChains(browser, duration=10)
    actions.move_to_element_with_offset(canvas, *path[0]).click_and_hold()
    for offset in path[1:]:
        actions.move_to_element_with_offset(canvas, *offset)
    actions.release().perform()


@pytest.fixture(scope="module")
def drawn_server(trained_drawn: Path) -> Iterator[Server]:
    """A server of the network that learned drawn digits and non-digits."""
    running = Server(trained_drawn)
    yield running
    running.stop()


@pytest.mark.slow
def test_pen_digits_replayed_on_the_page_are_read_as_people_wrote_them(
    drawn_server: Server, browser
):
    from selenium.webdriver.common.by import By

    points, labels = read_pen_digits()
    every_hand = hands(len(labels))
    test_rows = DrawnSplits().indices["test"]
    chosen = [
        row
        for digit in range(10)
        for row in test_rows[labels[test_rows] == digit][:REPLAYED_PER_DIGIT]
    ]
    browser.get(f"http://127.0.0.1:{drawn_server.port}/")
    read = []
    for row in chosen:
        browser.find_element(By.ID, "clear").click()
        # The page's own pen (28 px); the writer's size and place on the canvas.
        replay(browser, points[row], replace(every_hand[row], pen=PAGE_PEN))
        shown(browser)
        read.append(browser.execute_script("return window.lastReading.digit"))
    right = np.array(read) == labels[chosen]
    print(f"the page read {right.sum()} of {len(chosen)} pen digits right")
    assert len(chosen) == 10 * REPLAYED_PER_DIGIT
    assert right.mean() >= PAGE_FLOOR, f"read {read} for {labels[chosen].tolist()}"


def shown(browser) -> tuple[str, bool]:
    """What ``#prediction`` says once the page has read the latest drawing, and if it is unsure."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(
        lambda page: page.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "read"
    )
    prediction = browser.find_element(By.ID, "prediction")
    return prediction.text, "unsure" in prediction.get_attribute("class").split()


def test_the_page_says_not_sure_for_a_scribble_and_a_dot_and_reads_a_digit(
    trained_drawn: Path, drawn_server: Server, browser
):
    from selenium.webdriver.common.by import By

    trained = load_trained(trained_drawn)
    # A scribble and a digit the network is clearly unsure and sure of, drawn as Python draws.
    shapes, _ = non_digits(40, MEASURING_SEED, ("scribble",))
    confidence = trained.probabilities(drawn_pixels(shapes, [Hand()] * 40)).max(axis=1)
    scribble = shapes[int(confidence.argmin())]
    assert confidence.min() < trained.threshold - 0.2
    points, labels = read_pen_digits()
    rows = DrawnSplits().indices["test"][:40]
    digit_confidence = trained.probabilities(drawn_pixels(points[rows], [Hand()] * 40)).max(axis=1)
    digit_row = rows[int(digit_confidence.argmax())]
    browser.get(f"http://127.0.0.1:{drawn_server.port}/")
    for stroke in scribble:
        replay(browser, stroke, Hand())
    text, unsure = shown(browser)
    first, second = browser.execute_script("return window.lastReading.likeliest")
    assert unsure and text == f"{first} or {second}?"
    browser.find_element(By.ID, "clear").click()
    replay(browser, np.array([[50.0, 50.0], [52.0, 50.0]]), Hand())  # a dot
    assert shown(browser)[1], "a dot is not a digit yet"
    browser.find_element(By.ID, "clear").click()
    replay(browser, points[digit_row], Hand())
    assert shown(browser) == (str(labels[digit_row]), False)


def test_under_concurrent_load_no_request_is_lost(server: Server, trained_standard: Path):
    from digits.bench.serve import load

    images, _ = split_for_testing(trained_standard)
    bodies = [json.dumps({"pixels": image.tolist()}).encode() for image in images[:20]]
    result = load(server.port, bodies, clients=8, requests=120, seconds=60)
    assert (result["requests"], result["lost"]) == (120, 0)
    assert 0 < result["p50_ms"] <= result["p99_ms"]


def test_a_port_another_program_holds_is_one_line_and_exit_2(trained_standard: Path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        command = ["digits.serve", "--ckpt_path", str(trained_standard), "--port", str(port)]
        result = subprocess.run(
            [sys.executable, "-m", *command], capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: cannot serve on 127.0.0.1:{port} (Address already in use): another program "
        "uses the port; pick another with --port"
    ]
    assert "serving" not in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # 192.0.2.1 is set aside for documentation (RFC 5737): no machine has it.
        (["--host", "192.0.2.1"], "--host must be 0.0.0.0, 127.0.0.1 or ::"),
        (["--host", "localhost"], "--host must be 0.0.0.0, 127.0.0.1 or ::"),
        (["--port", "80"], "--port must be 1024 to 65535"),
        (["--batch_timeout", "31"], "batch_timeout must be less than request_timeout"),
    ],
)
def test_what_litserve_would_refuse_once_started_is_one_line_before_it_starts(
    trained_standard: Path, capsys, args: list[str], expected: str
):
    """LitServe checks its host and port only as it starts, after this command has said
    where it serves; a traceback came then."""
    with pytest.raises(SystemExit) as exit_info:
        serve_main(["--ckpt_path", str(trained_standard), "--port", str(free_port()), *args])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"error: {expected}")
    assert "serving" not in captured.out
