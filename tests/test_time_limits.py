"""Time limits that cannot be swallowed and never cut the shared script pipeline, a body's
own TimeoutError told apart from a time limit, and a start batch with one bad message."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, Group, ResultFailure, WindowRateLimiter
from streamflow.model.messages import shard_of
from streamflow.model.schema import WORKER_GROUP
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def _error_type(handle: Any) -> str:
    with pytest.raises(ResultFailure) as info:
        handle.get_result(block=True, timeout=30)
    return str(info.value.error["type"])


def test_except_exception_in_a_body_does_not_swallow_its_time_limit(app: App) -> None:
    @app.actor(time_limit=0.2)
    def stubborn() -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # What user code often does; the limit goes through it.
            with contextlib.suppress(Exception):
                sum(range(1000))
        return "should not get here"

    with app.worker(concurrency=1):
        assert _error_type(stubborn.send()) == "TimeLimitExceeded"


def test_a_limit_reached_inside_the_script_pipeline_cuts_neither_it_nor_its_connection(
    app: App,
) -> None:
    """Bodies that spend their time in the App's shared pipeline (a rate limiter, taken
    in a loop) hit their limits while many other tasks record outcomes through that same
    pipeline: those all finish, the pipeline is not wedged, and no reply goes astray."""
    limiter = WindowRateLimiter(app, "plenty", limit=10**9, window=60)

    @app.actor(time_limit=0.15)
    def busy() -> None:
        while True:
            with limiter.acquire():
                pass

    @app.actor
    def add(x: int) -> int:
        return x + 1

    with capture_logs() as logs, app.worker(concurrency=8):
        limited = [busy.send() for _ in range(6)]
        groups = [app.submit(Group(*(add.message(i) for i in range(50)))) for _ in range(4)]
        for handle in groups:
            assert handle.result(timeout=60) == [i + 1 for i in range(50)]
        for handle in limited:
            assert _error_type(handle) == "TimeLimitExceeded"
        # Still whole afterwards: a call made now gets its own reply.
        assert add.send(41).result(timeout=30) == 42
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]


def test_a_bodys_own_timeout_error_is_not_a_time_limit(app: App) -> None:
    @app.actor(time_limit=5)
    def sync_timeout() -> None:
        raise TimeoutError("the partner API took too long")

    @app.actor(time_limit=5)
    async def async_timeout() -> None:
        await asyncio.sleep(0)
        raise TimeoutError("the partner API took too long")

    with app.worker(concurrency=2):
        assert _error_type(sync_timeout.send()) == "TimeoutError"
        assert _error_type(async_timeout.send()) == "TimeoutError"


def test_one_bad_reply_in_a_start_batch_stalls_only_its_own_message(
    app: App, r: redis.Redis
) -> None:
    @app.actor
    def one() -> int:
        return 1

    # Submitted before the worker starts: its first read takes them all in one batch.
    # (Groups of two: a lone task runs before any start script.)
    good = [app.submit(Group(one.message(), one.message())) for _ in range(10)]
    bad = app.submit(Group(one.message(), one.message()))
    log_key = app.keys.log(bad.id)
    r.delete(log_key)
    r.set(log_key, "not a stream")  # the start script's XLEN on it fails: WRONGTYPE
    with capture_logs() as logs, app.worker(concurrency=4, lease_ms=60_000):
        for handle in good:
            assert handle.result(timeout=30) == [1, 1]
        wait_until(lambda: any(e["event"] == "task_start_failed" for e in logs), 10)
    failed = [e for e in logs if e["event"] == "task_start_failed"]
    assert {e["workflow_id"] for e in failed} == {bad.id}
    # Its message is still pending, for another try after its lease.
    pending = r.xpending(app.keys.queue(shard_of(bad.id), "default"), WORKER_GROUP)
    assert pending["pending"] == 2  # both members' messages
