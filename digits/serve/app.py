"""The server around the model: the page, one-line JSON errors, a limit on the body size.

Everything here is LitServe's own server (FastAPI and uvicorn underneath), with what
LitServe has no option for done through FastAPI: the page at ``GET /`` (in place of
LitServe's "litserve running"), and error bodies of the form
``{"error": "one readable line"}`` instead of FastAPI's ``{"detail": ...}``. LitServe's
``max_payload_size`` refuses a larger body as soon as it has read past the limit, and a
declared ``Content-Length`` over the limit is refused before anything is read.
"""

from __future__ import annotations

from importlib.resources import files

import litserve as ls
from fastapi import Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_BODY_BYTES = 2 * 1024 * 1024


def server(api: ls.LitAPI, workers: int = 1, accelerator: str = "cpu") -> ls.LitServer:
    """A LitServer for ``api`` with the page, the JSON errors and the body limit."""
    litserver = ls.LitServer(
        api,
        accelerator=accelerator,
        workers_per_device=workers,
        max_payload_size=MAX_BODY_BYTES,
        middlewares=[(DeclaredSizeLimit, {"max_bytes": MAX_BODY_BYTES})],
        restart_workers=True,  # an inference worker that dies is replaced
    )
    app = litserver.app
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    page = files("digits.serve").joinpath("page.html").read_text()
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
    return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)


class DeclaredSizeLimit:
    """Refuses a request whose ``Content-Length`` is over the limit, without reading it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"0")
            if length.isdigit() and int(length) > self.max_bytes:
                limit = f"{self.max_bytes // (1024 * 1024)} MB"
                response = JSONResponse(
                    {"error": f"the body is {int(length)} bytes; at most {limit}"},
                    status_code=413,
                    headers={"Connection": "close"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
