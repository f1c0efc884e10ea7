"""The dashboard's JSON API under ``/api``: one endpoint behind every page, and the
actions (cancel, requeue, purge, resume), each refused on a read-only dashboard (403),
without the token when one is set (401), and unless its body is JSON (415).

Handlers parse and check their input here; the reading is ``Views``'s, run in a thread
(the library's Redis calls block).
"""

from __future__ import annotations

import dataclasses
import hmac
import json
from http import HTTPStatus
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from streamflow.history.listing import STATUSES
from streamflow.logs import get_logger
from streamflow.model.version import __version__
from streamflow.web.errors import WebError
from streamflow.web.values import parse_time
from streamflow.web.views import Views

log = get_logger(__name__)

MAX_LIMIT = 500
"""The largest ``limit`` a list takes."""
MAX_EVENTS = 5000
"""The most events one workflow's page takes (``events``)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How a dashboard is served."""

    read_only: bool = False
    """Hide the actions, and refuse them with 403."""
    token: str | None = None
    """The bearer token actions need (None: none)."""
    refresh_s: float = 3.0
    """How often the pages read again."""


def routes(views: Views, settings: Settings) -> list[Route]:
    """The API's routes on ``views``."""

    async def config(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "read_only": settings.read_only,
                "token_required": settings.token is not None,
                "refresh_s": settings.refresh_s,
                "version": __version__,
                "statuses": list(STATUSES),
            }
        )

    async def workflows(request: Request) -> JSONResponse:
        query = request.query_params
        status = query.get("status") or None
        if status is not None and status not in STATUSES:
            raise WebError(
                HTTPStatus.BAD_REQUEST,
                f"status must be one of {', '.join(STATUSES)} (got {status!r})",
            )
        since, until = (query.get(name) or None for name in ("since", "until"))
        found = await run_in_threadpool(
            views.workflows,
            status=status,
            actor=query.get("actor") or None,
            since_ms=None if since is None else _time(since, "since"),
            until_ms=None if until is None else _time(until, "until"),
            limit=_number(request, "limit", 50, MAX_LIMIT),
        )
        return JSONResponse(found)

    async def workflow(request: Request) -> JSONResponse:
        events = _number(request, "events", 300, MAX_EVENTS)
        found = await run_in_threadpool(views.workflow, request.path_params["id"], events)
        return JSONResponse(found)

    async def cancel(request: Request) -> JSONResponse:
        reason = _reason(await _action(request, settings), "cancelled from the dashboard")
        workflow_id = request.path_params["id"]
        done = await run_in_threadpool(views.cancel, workflow_id, reason)
        log.info("workflow_cancelled_from_web", workflow_id=workflow_id, reason=reason)
        return JSONResponse(done)

    async def resume_workflow(request: Request) -> JSONResponse:
        reason = _reason(await _action(request, settings), "resumed from the dashboard")
        workflow_id = request.path_params["id"]
        done = await run_in_threadpool(views.resume_workflow, workflow_id, reason)
        log.info("workflow_resumed_from_web", workflow_id=workflow_id, reason=reason)
        return JSONResponse(done)

    async def dead_letters(request: Request) -> JSONResponse:
        limit = _number(request, "limit", 100, MAX_LIMIT)
        return JSONResponse(await run_in_threadpool(views.dead_letters, limit))

    async def dead_letter(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(views.dead_letter, request.path_params["id"]))

    async def requeue(request: Request) -> JSONResponse:
        await _action(request, settings)
        dead_id = request.path_params["id"]
        done = await run_in_threadpool(views.requeue, dead_id)
        log.info("dead_letter_requeued_from_web", dead_id=dead_id, message_id=done["message_id"])
        return JSONResponse(done)

    async def purge(request: Request) -> JSONResponse:
        await _action(request, settings)
        purged = await run_in_threadpool(views.app.dead_letters.purge)
        log.info("dead_letters_purged_from_web", purged=purged)
        return JSONResponse({"purged": purged})

    async def workers(request: Request) -> JSONResponse:
        everyone = _flag(request, "all")
        return JSONResponse(await run_in_threadpool(views.workers, everyone))

    async def queues(request: Request) -> JSONResponse:
        by_shard = _flag(request, "by_shard")
        return JSONResponse(await run_in_threadpool(views.queues, by_shard))

    async def resume(request: Request) -> JSONResponse:
        body = await _action(request, settings)
        queue, actor = body.get("queue"), body.get("actor")
        try:
            await run_in_threadpool(lambda: views.app.resume(queue=queue, actor=actor))
        except ValueError as exc:
            raise WebError(
                HTTPStatus.BAD_REQUEST, f"resume needs a queue or an actor's name: {exc}"
            ) from None
        log.info("resumed_from_web", queue=queue, actor=actor)
        return JSONResponse({"resumed": {"queue": queue, "actor": actor}})

    return [
        Route("/api/config", config),
        Route("/api/workflows", workflows),
        Route("/api/workflows/{id}", workflow),
        Route("/api/workflows/{id}/cancel", cancel, methods=["POST"]),
        Route("/api/workflows/{id}/resume", resume_workflow, methods=["POST"]),
        Route("/api/dead-letters", dead_letters),
        Route("/api/dead-letters/purge", purge, methods=["POST"]),
        Route("/api/dead-letters/{id}", dead_letter),
        Route("/api/dead-letters/{id}/requeue", requeue, methods=["POST"]),
        Route("/api/workers", workers),
        Route("/api/queues", queues),
        Route("/api/resume", resume, methods=["POST"]),
    ]


async def _action(request: Request, settings: Settings) -> dict[str, Any]:
    """An action's JSON body, once the request may act.

    Raises:
        WebError: 403, the dashboard is read-only.
        WebError: 415, the body is not declared JSON.
        WebError: 401, a token is set and the request does not carry it.
        WebError: 400, the body is not a JSON object.
    """
    if settings.read_only:
        raise WebError(
            HTTPStatus.FORBIDDEN, "this dashboard is read-only (streamflow web --read-only)"
        )
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/json":
        raise WebError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"an action's body must be application/json (got {kind!r})",
        )
    if settings.token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # Constant time: the comparison must not tell how much of a guess was right.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), settings.token.encode()
        ):
            raise WebError(
                HTTPStatus.UNAUTHORIZED,
                "this action needs the header Authorization: Bearer <token>",
            )
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise WebError(
            HTTPStatus.BAD_REQUEST, f"the body must be a JSON object (got {raw[:80]!r})"
        ) from None
    if not isinstance(body, dict):
        raise WebError(HTTPStatus.BAD_REQUEST, f"the body must be a JSON object (got {body!r:.80})")
    return body


def _number(request: Request, name: str, default: int, most: int) -> int:
    """A whole-number query parameter from 1 to ``most``.

    Raises:
        WebError: 400, anything else, naming it.
    """
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise WebError(
            HTTPStatus.BAD_REQUEST, f"{name} must be a whole number from 1 to {most} (got {text!r})"
        )
    return int(text)


def _flag(request: Request, name: str) -> bool:
    """A yes/no query parameter (``1``/``true`` or ``0``/``false``; absent: no).

    Raises:
        WebError: 400, anything else.
    """
    text = request.query_params.get(name, "0").lower()
    if text not in ("0", "1", "true", "false", ""):
        raise WebError(HTTPStatus.BAD_REQUEST, f"{name} must be 1, true, 0 or false (got {text!r})")
    return text in ("1", "true")


def _time(text: str, name: str) -> int:
    try:
        return parse_time(text, name)
    except ValueError as exc:
        raise WebError(HTTPStatus.BAD_REQUEST, str(exc)) from None


def _reason(body: dict[str, Any], default: str) -> str:
    """An action's ``reason`` (``default`` if none).

    Raises:
        WebError: 400, a reason that is not a string.
    """
    reason = body.get("reason") or default
    if not isinstance(reason, str):
        raise WebError(HTTPStatus.BAD_REQUEST, f"reason must be a string (got {reason!r})")
    return reason
