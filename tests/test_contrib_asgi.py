"""streamflow.contrib.asgi.lifespan with a real Starlette app driven through its ASGI
interface (httpx), a real Redis, and the lifespan's own in-process worker."""

from __future__ import annotations

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from streamflow import App
from streamflow.contrib.asgi import lifespan
from streamflow.store import roster

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_lifespan_runs_a_worker_and_closes_the_app(app: App) -> None:
    @app.actor
    def square(x: int) -> int:
        return x * x

    async def squared(request: Request) -> JSONResponse:
        handle = await square.send_async(int(request.path_params["x"]))
        return JSONResponse({"result": await handle.result(timeout=30)})

    service = Starlette(
        routes=[Route("/squares/{x}", squared)],
        lifespan=lifespan(app, worker=True, concurrency=2),
    )
    transport = httpx.ASGITransport(app=service)
    async with (
        service.router.lifespan_context(service),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        answers = [(await client.get(f"/squares/{x}")).json() for x in range(5)]
        assert [a["result"] for a in answers] == [0, 1, 4, 9, 16]
    # Closed: the asyncio pool is gone, and the worker stopped (its card says so).
    assert not app._faces
    [worker] = roster.read(app.client, app.keys)
    assert worker.stopped_ms > 0


async def test_a_service_that_cannot_reach_redis_does_not_start() -> None:
    app = App("redis://127.0.0.1:1/0", retry_for=0)
    service = Starlette(lifespan=lifespan(app))
    with pytest.raises(redis.ConnectionError):
        async with service.router.lifespan_context(service):
            pass
    app.close()


def test_worker_options_without_a_worker_are_refused(app: App) -> None:
    with pytest.raises(TypeError, match=r"worker options \['concurrency'\] need worker=True"):
        lifespan(app, concurrency=2)
    with pytest.raises(TypeError, match="needs a streamflow App"):
        lifespan("app")  # type: ignore[arg-type]
