"""The server around the model: the page, one-line JSON errors, a limit on the body size.

Everything here is LitServe's own server (FastAPI and uvicorn underneath), with what
LitServe has no option for done through FastAPI: the page at ``GET /`` (in place of
LitServe's "litserve running"), and error bodies of the form
``{"error": "one readable line"}`` instead of FastAPI's ``{"detail": ...}``, and a
body over the limit refused with a 413 that the client can read (``BodySizeLimit``).
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib.resources import files

import litserve as ls
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_BODY_BYTES = 2 * 1024 * 1024
# A refused body is read and thrown away up to here, so that the client can read the 413.
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 10.0


def server(api: ls.LitAPI, workers: int = 1, accelerator: str = "cpu") -> ls.LitServer:
    """A LitServer for ``api`` with the page, the JSON errors and the body limit."""
    litserver = ls.LitServer(
        api,
        accelerator=accelerator,
        workers_per_device=workers,
        middlewares=[(BodySizeLimit, {"max_bytes": MAX_BODY_BYTES})],
        restart_workers=True,  # an inference worker that dies is replaced
    )
    app = litserver.app
    app.add_exception_handler(RequestValidationError, invalid_request)
    # Starlette's, which FastAPI's subclasses: the router's own 404 and 405, and a body it
    # cannot parse, are Starlette's.
    app.add_exception_handler(HTTPException, http_error)
    page = files("digits.reading.serve").joinpath("page.html").read_text()
    # LitServe answers GET / with "litserve running"; the page takes that place.
    app.router.routes = [route for route in app.router.routes if getattr(route, "path", "") != "/"]
    app.add_api_route("/", lambda: HTMLResponse(page), methods=["GET"], include_in_schema=False)
    return litserver


async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's list of validation errors as the one line that matters, with a 4xx."""
    first = error.errors()[0]
    kind, where = first.get("type", ""), [str(part) for part in first.get("loc", ())[1:]]
    if kind == "json_invalid":
        return JSONResponse({"error": "the body is not valid JSON"}, status_code=400)
    if kind == "extra_forbidden":
        message = f'unknown key "{where[-1]}": send "pixels" or "image"'
    elif kind == "model_attributes_type":
        message = 'the body must be a JSON object: {"pixels": [...]} or {"image": "data:..."}'
    else:
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    return JSONResponse({"error": message}, status_code=422)


async def http_error(request: Request, error: HTTPException) -> JSONResponse:
    # A 405's Allow header (the methods the path takes) is part of the answer.
    return JSONResponse(
        {"error": str(error.detail)}, status_code=error.status_code, headers=error.headers
    )


class BodySizeLimit:
    """Refuses a body over the limit with a 413 that every client gets to read.

    A server that answers while the client is still sending, and closes, makes the
    kernel reset the connection: a client that sends its whole body before reading
    (Python's ``urllib`` and ``http.client``, a browser's ``fetch``) then sees a reset,
    not the answer. So the rest of the body is read and thrown away first, up to
    ``DRAIN_BYTES`` or ``DRAIN_SECONDS``, whichever comes first: a client that sends a
    gigabyte still cannot make the server read it. A client that asked ``Expect:
    100-continue`` has sent nothing yet and is answered at once. A body without a
    declared length (chunked) is held until it passes the limit, then refused the same
    way; under the limit it is passed on whole.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit():
            if int(length) > self.max_bytes:
                if headers.get(b"expect", b"").lower() != b"100-continue":
                    await drain(receive)
                await self.refuse(f"the body is {int(length)} bytes", scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        body, over, finished = await read_at_most(receive, self.max_bytes)
        if over:
            if not finished:
                await drain(receive)
            await self.refuse("the body is longer", scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)

    async def refuse(self, what: str, scope: Scope, receive: Receive, send: Send) -> None:
        limit = f"{self.max_bytes // (1024 * 1024)} MB"
        response = JSONResponse(
            {"error": f"{what}; at most {limit}"}, status_code=413, headers={"Connection": "close"}
        )
        await response(scope, receive, send)


async def read_at_most(receive: Receive, max_bytes: int) -> tuple[bytes, bool, bool]:
    """The body, read until it ends or passes ``max_bytes``: (body, over the limit, ended)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks), False, True
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        ended = not message.get("more_body", False)
        if size > max_bytes:
            return b"", True, ended
        if ended:
            return b"".join(chunks), False, True


async def drain(receive: Receive) -> None:
    """Read and throw away what the client still sends, within DRAIN_BYTES and DRAIN_SECONDS."""

    async def read_until_done() -> None:
        drained = 0
        while drained < DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            drained += len(message.get("body", b""))

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(read_until_done(), DRAIN_SECONDS)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, whole, then what the client sends."""
    given = False

    async def receive_again() -> dict:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again
