"""ASGI frameworks (FastAPI, Starlette, anything with a lifespan): open the App when
the service starts and close it when it stops.

``FastAPI(lifespan=lifespan(app))`` or ``Starlette(lifespan=lifespan(app))``; within a
lifespan of the service's own, ``async with lifespan(app)(asgi_app): ...``. Needs no
extra: it imports neither framework.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from streamflow.api.app import App
from streamflow.logs import get_logger

log = get_logger(__name__)


def lifespan(
    app: App, *, worker: bool = False, **worker_options: Any
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan for an ASGI service that submits to ``app``.

    On startup it checks that Redis answers (a service that cannot reach it fails to
    start, instead of failing its first request) and, with ``worker=True``, starts an
    in-process worker (for development: production runs ``streamflow worker``); on
    shutdown it stops that worker, letting its tasks finish, and closes the App's
    connection pools.

    Args:
        app: the App the service submits to.
        worker: also run a worker in this process, in a thread.
        worker_options: passed to ``app.worker`` (``queues``, ``concurrency``, ...).

    Raises:
        TypeError: ``app`` is not a streamflow App, or ``worker_options`` are given
            without ``worker=True``.
    """
    if not isinstance(app, App):
        raise TypeError(f"lifespan needs a streamflow App (got {type(app).__name__})")
    if worker_options and not worker:
        raise TypeError(
            f"worker options {sorted(worker_options)} need worker=True (no worker runs)"
        )

    @contextlib.asynccontextmanager
    async def span(_: Any) -> AsyncIterator[None]:
        await asyncio.to_thread(app.client.ping)
        running = app.worker(**worker_options).start() if worker else None
        log.info("asgi_app_opened", app=repr(app), worker=running is not None)
        try:
            yield
        finally:
            if running is not None:
                await asyncio.to_thread(running.stop)
            await app.aclose()
            log.info("asgi_app_closed", app=repr(app))

    return span
