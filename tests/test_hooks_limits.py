"""Hooks around tasks and workflows; rate limiters on Redis."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from typing import Any

import pytest
import redis

from streamflow import (
    App,
    BucketRateLimiter,
    ConcurrentRateLimiter,
    Group,
    Hooks,
    RateLimitExceeded,
    TaskInfo,
    WindowRateLimiter,
)
from streamflow.model.events import TaskFailed
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


class Recorder(Hooks):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def before_task(self, task: TaskInfo) -> None:
        self.calls.append(("before", task.actor, tuple(task.args)))

    def after_task(
        self, task: TaskInfo, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        self.calls.append(("after", task.actor, result, type(exception).__name__))

    def after_workflow(self, workflow_id: str, status: str) -> None:
        self.calls.append(("workflow", workflow_id, status))


class Broken(Hooks):
    def before_task(self, task: TaskInfo) -> None:
        raise RuntimeError("a broken hook")


def test_hooks_see_tasks_and_workflow_ends(app: App) -> None:
    recorder = Recorder()
    app.add_hooks(Broken(), recorder)

    @app.actor
    def double(x: int) -> int:
        return 2 * x

    @app.actor
    def boom() -> None:
        raise ValueError("no")

    with app.worker(concurrency=1):
        ok = double.send(21)
        assert ok.get_result(block=True, timeout=10) == 42
        failed = boom.send()
        failed.get_result(block=True, timeout=10, raise_on_error=False)
        wait_until(lambda: len(recorder.calls) == 6, 10, message="hooks")
    assert ("before", "double", (21,)) in recorder.calls
    assert ("after", "double", 42, "NoneType") in recorder.calls
    assert ("after", "boom", None, "ValueError") in recorder.calls
    assert ("workflow", ok.id, "completed") in recorder.calls
    assert ("workflow", failed.id, "failed") in recorder.calls


def test_twenty_tasks_under_a_limit_of_two(app: App, r: redis.Redis) -> None:
    limiter = ConcurrentRateLimiter(app, "api", limit=2, lease=10)

    @app.actor(min_backoff=0.02)
    def call_api(i: int) -> list[int]:
        with limiter.acquire():
            start = r.time()
            r.blpop(["never-pushed"], timeout=0.03)  # the protected work
            end = r.time()
        return [start[0] * 10**6 + start[1], end[0] * 10**6 + end[1]]

    with app.worker(concurrency=8):
        handle = app.submit(Group(*(call_api.message(i) for i in range(20))))
        intervals = handle.get_result(block=True, timeout=60)
    # From the results in the log: the protected sections never overlap more than 2.
    points = sorted(
        itertools.chain.from_iterable(((s, 1), (e, -1)) for s, e in intervals),
        key=lambda p: (p[0], p[1]),
    )
    running = peak = 0
    for _, step in points:
        running += step
        peak = max(peak, running)
    assert peak <= 2
    retried = [e.event for e in handle.history() if isinstance(e.event, TaskFailed)]
    assert retried and all(e.later and e.error["type"] == "RateLimitExceeded" for e in retried)


def test_window_limiter(app: App) -> None:
    limiter = WindowRateLimiter(app, "burst", limit=3, window=60)
    for _ in range(3):
        with limiter.acquire():
            pass
    with pytest.raises(RateLimitExceeded, match="'burst' exceeded"), limiter.acquire():
        pass
    with limiter.acquire(raise_on_failure=False) as acquired:
        assert acquired is False


def test_bucket_limiter_counts_per_fixed_bucket(app: App, r: redis.Redis) -> None:
    limiter = BucketRateLimiter(app, "per-second", limit=2, bucket=1.0)
    # Start just after a bucket begins, so that the three takes share it.
    wait_until(lambda: 50 < app.store.now_ms() % 1000 < 500, 5, message="a fresh bucket")
    assert limiter.take() and limiter.take()
    assert limiter.take() is None  # the bucket is full
    with pytest.raises(RateLimitExceeded, match="'per-second' exceeded"), limiter.acquire():
        pass
    # The next bucket starts empty, whatever the last one took.
    start = app.store.now_ms() // 1000
    wait_until(lambda: app.store.now_ms() // 1000 > start, 5, message="the next bucket")
    assert limiter.take() is not None
    assert 0 < r.pttl(app.keys.limiter("per-second")) <= 1000  # gone with its bucket


def test_a_bucket_must_last(app: App) -> None:
    with pytest.raises(ValueError, match="bucket must be at least 1 ms"):
        BucketRateLimiter(app, "none", limit=1, bucket=0)


def test_async_with(app: App) -> None:
    limiter = ConcurrentRateLimiter(app, "mutex", limit=1)

    async def scenario() -> None:
        async with limiter.acquire():
            with pytest.raises(RateLimitExceeded):
                async with limiter.acquire():
                    pass
        async with limiter.acquire() as acquired:
            assert acquired

    asyncio.run(scenario())


def test_killed_holder_frees_its_slot_after_the_lease(app: App, redis_url: str) -> None:
    code = (
        "import signal, sys\n"
        "from streamflow import App, ConcurrentRateLimiter\n"
        f"app = App({redis_url!r})\n"
        "limiter = ConcurrentRateLimiter(app, 'mutex', limit=1, lease=0.5)\n"
        "limiter.acquire().__enter__()\n"
        "print('held', flush=True)\n"
        "signal.pause()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        limiter = ConcurrentRateLimiter(app, "mutex", limit=1, lease=0.5)
        with pytest.raises(RateLimitExceeded), limiter.acquire():
            pass
        holder.kill()
        holder.wait()

        def free() -> bool:
            with limiter.acquire(raise_on_failure=False) as acquired:
                return acquired

        wait_until(free, 10, interval_s=0.05, message="the slot to free")
    finally:
        holder.kill()
        holder.wait()
