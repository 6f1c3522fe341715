"""The ASGI application: the page, the JSON API, one-line errors, the token, and a cap on what a request may upload.

::

    from alice.serve.app import create_app
    app = create_app("artifacts/digits-image")      # loads the space and its indexes once
    # uvicorn.run(app, host="127.0.0.1", port=8000), which is what `alice serve` does

FastAPI's interactive documentation pages (``/docs``, ``/redoc``) are switched off: they load
their scripts from a CDN, and nothing here comes from the network. The schema is ``/openapi.json``
(:mod:`alice.serve.contract`). With a token (``ServeSpec.token``), every request but the page
and ``/api/health`` must carry ``Authorization: Bearer <token>``, compared in constant time;
any other is a 401 before its body is read.
"""

from __future__ import annotations

import dataclasses
import hmac
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from alice import console
from alice._version import __version__
from alice.errors import AliceError
from alice.serve import routes
from alice.serve.contract import OPEN_PATHS, constrain
from alice.serve.spec import ServeSpec
from alice.serve.state import HTTPProblem, Served


def problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one shape of every refusal: ``{"error": "one line"}``."""
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


def authorized(headers: dict[bytes, bytes], token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token.encode("utf-8"))


class Gate:
    """In front of the application: a 401 for a request without the token (when there is one), then a 413 for a
    request body larger than ``limit`` bytes, by its Content-Length or as it arrives."""

    def __init__(self, app, limit: int, token: str | None = None) -> None:
        self.app, self.limit, self.token = app, limit, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.token is not None and scope.get("path") not in OPEN_PATHS and not authorized(headers, self.token):
            refused = problem(
                401,
                "this server needs its token: send Authorization: Bearer <token> (the page asks for it)",
                {"WWW-Authenticate": 'Bearer realm="alice"'},
            )
            return await refused(scope, receive, send)
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        too_big = f"the request is larger than this server accepts ({self.limit:,} bytes; see --max-upload-mb)"
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await problem(413, too_big)(scope, receive, send)
        seen, started = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await problem(413, too_big)(scope, receive, send)


class _TooLarge(Exception):
    pass


def page() -> str:
    """The search page: one HTML file with its CSS and JavaScript inline."""
    return resources.files("alice.serve").joinpath("page.html").read_text(encoding="utf-8")


def create_app(path: str | Path | None = None, spec: ServeSpec | None = None, served: Served | None = None) -> FastAPI:
    """The application over one space: loaded from ``path`` here, or ``served`` as already loaded."""
    spec = spec or (served.spec if served is not None else ServeSpec())
    spec.check()  # a server beyond the loopback without a token is refused before anything loads
    if served is None:
        served = Served.load(path, spec)
    elif served.spec is not spec:  # the same space and indexes, served with other settings
        served = dataclasses.replace(served, spec=spec)
    app = FastAPI(
        title="ALICE search",
        version=__version__,
        description=(
            f"Search and counterfactual queries over the ALICE space {served.space.reference.manifest.name!r} "
            f"(reference sha256 {served.space.reference.sha256[:12]}…). Every refusal is a 4xx (a 503 when the "
            'server is busy) whose body is {"error": "one line"}; each route lists the statuses it answers.'
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.served = served
    app.include_router(routes.router)
    generated = app.openapi

    def openapi() -> dict:
        if not getattr(app.state, "constrained", False):
            constrain(generated(), served)  # FastAPI keeps the schema it generated; constrained once, in place
            app.state.constrained = True
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page()

    @app.exception_handler(HTTPProblem)
    async def refused(request: Request, exc: HTTPProblem) -> JSONResponse:
        return problem(exc.status, str(exc))

    @app.exception_handler(AliceError)
    async def mistaken(request: Request, exc: AliceError) -> JSONResponse:
        return problem(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        return problem(422, f"{where}: {message}" if where else message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # a 405 keeps its Allow header: the methods the path answers
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return problem(exc.status_code, message, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        console.error(f"{request.method} {request.url.path}: {type(exc).__name__}: {exc}")
        return problem(500, f"internal error ({type(exc).__name__}); the server goes on, see its log")

    return ServedApp(app, spec.max_upload_bytes, spec.token)


class ServedApp(Gate):
    """The FastAPI application behind the upload cap; ``.app`` is the FastAPI object, ``.state`` its state."""

    @property
    def state(self):
        return self.app.state

    def openapi(self) -> dict:
        return self.app.openapi()
