"""The dashboard as an ASGI application: one static page (HTML, CSS and a small vanilla
script, no build step) that draws itself from the JSON API under ``/api``.

Errors are JSON (``{"error": ...}``) with the status that fits; an unexpected one is
logged with its traceback and answered 500 without it. Every response forbids framing
and loads nothing from elsewhere (a Content-Security-Policy of ``'self'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamflow.api.app import App
from streamflow.logs import get_logger
from streamflow.web.api import Settings, routes
from streamflow.web.errors import WebError
from streamflow.web.views import Views

log = get_logger(__name__)

STATIC = Path(__file__).with_name("static")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
"""The Host headers a dashboard bound to a loopback address accepts (not a rebound name)."""
_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def create_app(
    app: App,
    *,
    read_only: bool = False,
    token: str | None = None,
    refresh_s: float = 3.0,
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The dashboard of ``app``'s Redis.

    Args:
        read_only: hide the actions and refuse them (403).
        token: the bearer token every action needs (None: none; an empty one counts
            as none).
        refresh_s: how often the pages read again.
        allowed_hosts: the Host headers accepted (None: any), e.g. ``LOOPBACK_HOSTS``
            for a dashboard bound to 127.0.0.1, so a page of another site whose name
            points there cannot read it.
    """
    settings = Settings(read_only=read_only, token=token or None, refresh_s=refresh_s)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    middleware = [Middleware(_SecurityHeaders)]
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    return Starlette(
        routes=[
            Route("/", index),
            *routes(Views(app), settings),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=middleware,
        exception_handlers={
            WebError: _refused,
            HTTPException: _http_error,
            Exception: _failed,
        },
    )


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebError)
    return JSONResponse({"error": exc.message}, status_code=int(exc.status))


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, wrong method) as JSON."""
    assert isinstance(exc, HTTPException)
    said = f"no such page: {request.url.path}" if exc.status_code == 404 else exc.detail
    return JSONResponse({"error": said}, status_code=exc.status_code, headers=exc.headers)


async def _failed(request: Request, exc: Exception) -> Response:
    """A bug or an outage: logged with its traceback, answered without it."""
    log.error("web_request_failed", path=request.url.path, exc_info=exc)
    return JSONResponse(
        {"error": f"internal error: {type(exc).__name__} (see the server's log)"},
        status_code=500,
    )


class _SecurityHeaders:
    """Adds ``_HEADERS`` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, sending)
