"""The client's two faces, threads and asyncio, run through the same scenarios: the same
results, errors and histories, from one implementation. Then what only the asyncio face
must show: waiting for many costs one subscription, and never blocks the event loop."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from streamflow import (
    App,
    Chain,
    Group,
    ResultFailure,
    ResultMissing,
    ResultTimeout,
    WorkflowIdConflict,
)
from streamflow.runtime.projector import APPLY_CHUNK
from streamflow.store.cluster import connect
from tests.helpers import hold, pattern_subscriptions
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Threads:
    """The threads' face, called from a coroutine (blocking: fine in a test)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def submit(self, canvas: Any, **options: Any) -> Any:
        return Awaited(self.app.submit(canvas, **options))

    async def submit_many(self, canvases: list[Any]) -> list[Any]:
        return [Awaited(h) for h in self.app.submit_many(canvases)]

    async def send(self, actor: Any, *args: Any) -> Any:
        return Awaited(actor.send(*args))

    def handle(self, workflow_id: str) -> Any:
        return Awaited(self.app.handle(workflow_id))

    async def results(self, handles: list[Any], **options: Any) -> list[Any]:
        return self.app.results([h.handle for h in handles], **options)

    async def history(self, workflow_id: str) -> Any:
        return self.app.history(workflow_id)

    async def workflows(self, **options: Any) -> Any:
        return self.app.workflows(**options)

    def dead_letters(self) -> Any:
        return Awaited(self.app.dead_letters)

    async def send_later(self, actor: Any, delay: float, *args: Any) -> Any:
        return Awaited(actor.send_with_options(args=args, delay=delay))


class Awaited:
    """A threads' handle (or other object) whose calls are awaitable, as the asyncio
    face's are."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.id = getattr(handle, "id", None)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.handle, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


class Loop:
    """The asyncio face."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def submit(self, canvas: Any, **options: Any) -> Any:
        return await self.app.submit_async(canvas, **options)

    async def submit_many(self, canvases: list[Any]) -> list[Any]:
        return await self.app.submit_many_async(canvases)

    async def send(self, actor: Any, *args: Any) -> Any:
        return await actor.send_async(*args)

    def handle(self, workflow_id: str) -> Any:
        return self.app.handle_async(workflow_id)

    async def results(self, handles: list[Any], **options: Any) -> list[Any]:
        return await self.app.results_async(handles, **options)

    async def history(self, workflow_id: str) -> Any:
        return await self.app.history_async(workflow_id)

    async def workflows(self, **options: Any) -> Any:
        return await self.app.workflows_async(**options)

    def dead_letters(self) -> Any:
        return self.app.dead_letters_async

    async def send_later(self, actor: Any, delay: float, *args: Any) -> Any:
        return await actor.send_with_options_async(args=args, delay=delay)


@pytest.fixture(params=["threads", "asyncio"])
def face(request: pytest.FixtureRequest, app: App) -> Iterator[Any]:
    yield Threads(app) if request.param == "threads" else Loop(app)


@pytest.fixture
def actors(app: App) -> dict[str, Any]:
    @app.actor
    def add(a: int, b: int = 0) -> int:
        return a + b

    @app.actor
    def boom(*piped: Any) -> None:
        raise ValueError("boom")

    @app.actor
    def gate(*piped: Any) -> str:
        hold(connect(app.url), "gate", 30)
        return "opened"

    return {"add": add, "boom": boom, "gate": gate}


async def test_results_status_history_and_partial_results(
    app: App, face: Any, actors: dict[str, Any]
) -> None:
    add = actors["add"]
    canvas = Chain(add.message(1, 2), Group(add.message(10), add.message(20)))
    with app.worker(concurrency=4):
        handle = await face.submit(canvas)
        assert await handle.result(timeout=30) == [13, 23]  # a chain's last step
        assert await handle.get_result() == [13, 23]
        status = await handle.status()
        assert (status.status, status.counts["succeeded"], status.done) == ("completed", 3, True)
        assert await handle.completed()
        assert await handle.partial_results() == [3, [13, 23]]
        assert await handle.results_by_part(canvas) == [3, [13, 23]]
        # The same events as the other face reads, in the same order.
        events = [entry.event for entry in await handle.history()]
        assert events == [entry.event for entry in app.history(handle.id)]
        assert [type(events[0]).__name__, type(events[-1]).__name__] == [
            "WorkflowSubmitted",
            "WorkflowCompleted",
        ]
        sent = await face.send(add, 5, 6)
        assert await sent.result(timeout=30) == 11


async def test_not_finished_timeout_and_unknown(
    app: App, r: redis.Redis, face: Any, actors: dict[str, Any]
) -> None:
    with app.worker(concurrency=2):
        handle = await face.submit(actors["gate"].message())
        with pytest.raises(ResultMissing, match="not finished"):
            await handle.get_result()
        with pytest.raises(ResultTimeout):
            await handle.result(timeout=0.3)
        r.lpush("gate", 1)
        assert await handle.result(timeout=30) == "opened"
    with pytest.raises(ResultMissing, match="unknown"):
        await face.handle(app.new_workflow_id()).status()
    with pytest.raises(ResultMissing, match="unknown"):
        await face.handle(app.new_workflow_id()).get_result()


async def test_a_failure_raises_or_is_returned(app: App, face: Any, actors: dict[str, Any]) -> None:
    with app.worker(concurrency=2):
        handle = await face.submit(Chain(actors["add"].message(1), actors["boom"].message()))
        with pytest.raises(ResultFailure, match="boom"):
            await handle.result(timeout=30)
        failure = await handle.get_result(raise_on_error=False)
        assert isinstance(failure, ResultFailure) and failure.status == "failed"
        assert (await handle.status()).failed


async def test_ids_are_idempotent_and_conflicts_are_refused(
    app: App, face: Any, actors: dict[str, Any]
) -> None:
    add = actors["add"]
    workflow_id = app.new_workflow_id()
    first = await face.submit(add.message(1), workflow_id=workflow_id)
    again = await face.submit(add.message(1), workflow_id=workflow_id)
    assert first.id == again.id == workflow_id
    assert len(await again.history()) == 2  # written once
    with pytest.raises(WorkflowIdConflict):
        await face.submit(add.message(2), workflow_id=workflow_id)
    with pytest.raises(TypeError):
        await face.send(add, 1, 2, 3)  # checked before anything is written


async def test_many_at_once_and_a_canvas_larger_than_one_script(
    app: App, face: Any, actors: dict[str, Any]
) -> None:
    add = actors["add"]
    with app.worker(concurrency=8):
        handles = await face.submit_many([add.message(i, i) for i in range(50)])
        assert [await h.result(timeout=30) for h in handles] == [2 * i for i in range(50)]
        wide = await face.submit(Group(*[add.message(i) for i in range(APPLY_CHUNK + 5)]))
        assert await wide.result(timeout=60) == list(range(APPLY_CHUNK + 5))


async def test_cancel_many_results_and_parts(
    app: App, r: redis.Redis, face: Any, actors: dict[str, Any]
) -> None:
    add, gate, boom = actors["add"], actors["gate"], actors["boom"]
    with app.worker(concurrency=4):
        gated = await face.submit(Chain(gate.message(), add.message(1)))
        running = app.handle(gated.id)
        wait_until(lambda: running.status().counts["running"] == 1, 10)  # the body waits
        assert await gated.cancel("enough")
        assert not await gated.cancel("again")  # once
        with pytest.raises(ResultFailure, match="enough"):
            await gated.result(timeout=30)
        r.lpush("gate", 1)  # let the running body end
        ended = await face.submit_many([add.message(i, 1) for i in range(3)])
        failing = await face.submit(boom.message())
        assert await face.results(ended) == [1, 2, 3]
        with pytest.raises(ResultFailure, match="boom"):
            await face.results([*ended, failing])
        values = await face.results([*ended, failing], raise_on_error=False)
        assert values[:3] == [1, 2, 3] and isinstance(values[3], ResultFailure)
        canvas = Group(add.message(1), add.message(2))
        group = await face.submit(canvas)
        await group.result(timeout=30)
        assert await group.parts_completed(canvas) == 2
        events = await face.history(group.id)
        assert type(events[-1].event).__name__ == "WorkflowCompleted"
    listed = {s.workflow_id: s.status for s in await face.workflows(limit=1000)}
    assert listed[gated.id] == "cancelled" and listed[group.id] == "completed"
    assert [s.workflow_id for s in await face.workflows(status="failed")] == [failing.id]


async def test_dead_letters_and_a_delayed_send(
    app: App, r: redis.Redis, face: Any, actors: dict[str, Any]
) -> None:
    letters = face.dead_letters()
    first = app.dead_letters.add("sf:{0.325}:q:default", "1-1", b"junk", "undecodable")
    second = app.dead_letters.add("sf:{0.325}:q:other", "2-1", b"more", "undecodable")
    assert [letter.id for letter in await letters.list()] == [first, second]
    assert (await letters.get(first)).data == b"junk"
    with pytest.raises(KeyError):
        await letters.get("9-9")
    requeued = await letters.requeue(first)  # not a task message: requeued as it is
    assert r.xrange("sf:{0.325}:q:default", requeued, requeued)[0][1] == {b"m": b"junk"}
    assert await letters.purge() == 1
    assert await letters.list() == []
    with app.worker(concurrency=2):
        started = time.monotonic()
        later = await face.send_later(actors["add"], 0.5, 2, 3)
        assert await later.result(timeout=30) == 5
        assert time.monotonic() - started >= 0.5


async def _follow(handle: Any, after: int = 0) -> list[tuple[float, Any]]:
    """Each event the handle's ``events`` gives, with when it came."""
    if isinstance(handle, Awaited):
        return [(time.monotonic(), entry) for entry in handle.handle.events(after)]
    return [(time.monotonic(), entry) async for entry in handle.events(after)]


async def test_events_follow_a_workflow_live_until_it_ends(
    app: App, r: redis.Redis, face: Any, actors: dict[str, Any]
) -> None:
    add, gate = actors["add"], actors["gate"]
    with app.worker(concurrency=2):
        handle = await face.submit(Chain(add.message(1), gate.message()))
        opened = threading.Timer(1.0, r.lpush, ["gate", 1])
        opened.start()
        started = time.monotonic()
        followed = await _follow(handle)
        opened.join()
    entries = [entry for _, entry in followed]
    # The same events as the history, in order, each once; the iterator ended with it.
    assert [(e.seq, e.event) for e in entries] == [(e.seq, e.event) for e in app.history(handle.id)]
    assert type(entries[-1].event).__name__ == "WorkflowCompleted"
    # Live: what happened before the gate opened came before it opened.
    first_done = next(at for at, e in followed if type(e.event).__name__ == "TaskSucceeded")
    assert first_done - started < 0.9
    # From a given position: only what follows it.
    assert [e.seq for _, e in await _follow(handle, after=5)] == [e.seq for e in entries[5:]]
    with pytest.raises(ResultMissing, match="unknown"):
        await _follow(face.handle(app.new_workflow_id()))


def _worker(redis_url: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "streamflow.cli", "worker", "tests.sample_app:app"]
    command += ["--url", redis_url, "--concurrency", "8", "--processes", "1"]
    env = {**os.environ, "STREAMFLOW_REDIS_URL": redis_url}
    return subprocess.Popen(command, cwd=ROOT, env=env)


async def test_a_thousand_awaited_at_once_never_stall_the_loop(
    app: App, r: redis.Redis, redis_url: str
) -> None:
    """The test runner's own heap (every test module, hypothesis, pytest) is frozen out
    of the garbage collector first: a full collection walking it pauses any Python code
    for ~80 ms here, loop or not. What this test creates is collected as usual.

    A stall is the loop's thread busy between two ticks: its CPU time, not the wall
    clock, which also counts the moments this shared 2-core machine gives the process
    no CPU (the loop then waits in its selector, ready)."""

    def stub(*args: Any) -> Any:
        raise AssertionError("runs in the worker process only")

    counted = app.actor(stub, actor_name="counted")
    handles = await app.submit_many_async([counted.message(f"t{i}") for i in range(1000)])
    gaps: list[float] = []
    done = asyncio.Event()

    started = time.monotonic()
    late: list[tuple[float, float]] = []

    async def ticker() -> None:
        last, busy = time.monotonic(), time.thread_time()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now, spent = time.monotonic(), time.thread_time()
            gaps.append(spent - busy)
            if spent - busy > 0.02:
                late.append((round(last - started, 3), round(spent - busy, 3)))
            last, busy = now, spent

    gc.collect()
    gc.freeze()
    worker = _worker(redis_url)  # (starting a process blocks for a moment: before the ticker)
    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    try:
        results = await asyncio.gather(*(h.result(timeout=120) for h in handles))
    finally:
        done.set()
        await ticking
        worker.terminate()
        worker.wait(timeout=30)
        gc.unfreeze()
    assert results == [f"t{i}" for i in range(1000)]
    assert pattern_subscriptions(r) <= 1  # one subscription for all 1,000 waiters
    assert len(gaps) > 20 and max(gaps) < 0.05, f"busy {max(gaps) * 1000:.0f} ms {late}"
    await app.aclose()
