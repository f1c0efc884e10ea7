"""examples/fastapi_app.py end to end: httpx's AsyncClient against the ASGI app (its
lifespan run), a real Redis and a real worker process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def worker(redis_url: str, r: object) -> Iterator[None]:
    command = [sys.executable, "-m", "streamflow.cli", "worker", "examples.fastapi_app:app"]
    env = {**os.environ, "STREAMFLOW_REDIS_URL": redis_url}
    process = subprocess.Popen(
        [*command, "--url", redis_url, "--processes", "1"], cwd=ROOT, env=env
    )
    yield
    process.terminate()
    assert process.wait(timeout=30) == 0


async def test_submit_then_await_the_result_over_http(
    redis_url: str, worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMFLOW_REDIS_URL", redis_url)
    monkeypatch.syspath_prepend(str(ROOT))
    from examples import fastapi_app

    api = fastapi_app.api
    transport = httpx.ASGITransport(app=api)
    async with (
        api.router.lifespan_context(api),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        started = await asyncio.gather(
            *(client.post("/sums", params={"a": i, "b": 1}) for i in range(20))
        )
        assert {response.status_code for response in started} == {202}
        ids = [response.json()["id"] for response in started]
        answers = await asyncio.gather(*(client.get(f"/sums/{i}") for i in ids))
        assert [a.json()["result"] for a in answers] == [(i + 1) * 2 for i in range(20)]
        missing = await client.get(f"/sums/{fastapi_app.app.new_workflow_id()}")
        assert missing.status_code == 404
    # The lifespan closed the App: its asyncio pool and its threads' pool.
    assert not fastapi_app.app._faces
