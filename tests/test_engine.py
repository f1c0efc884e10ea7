"""The engine end to end on a real Redis: submit, run on workers, read results."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, Chain, Group, ResultFailure, WithDelay
from streamflow.model.events import (
    BarrierReleased,
    TaskEnqueued,
    TaskStarted,
    TaskSucceeded,
    WorkflowCompleted,
)
from tests.helpers import check_contract, command_calls, definition_of, events_of, run_worker
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def test_a_worker_runs_once(app: App) -> None:
    def loops() -> int:
        return sum(t.name == "streamflow-worker" for t in threading.enumerate())

    @app.actor
    def noop() -> None:
        pass

    before = loops()
    worker = app.worker(concurrency=1)
    with worker.start():  # `with` on a started worker starts no second fetch loop
        assert loops() == before + 1
        with pytest.raises(RuntimeError, match="started already"):
            worker.start()
    with pytest.raises(RuntimeError, match="runs once"):
        worker.run()


def seed_dag(app: App) -> Any:
    @app.actor
    def t1() -> int:
        return 1

    @app.actor
    def t2(x: int) -> int:
        return x + 1

    @app.actor
    def t3(x: int) -> int:
        return x * 10

    @app.actor
    def t4(x: int) -> int:
        return x + 3

    @app.actor
    def t5(x: int) -> int:
        return x * 5

    @app.actor
    def t6(x: int) -> int:
        return x * 6

    @app.actor
    def t7(x: int) -> int:
        return x * 7

    @app.actor
    def t8(parts: list[Any]) -> list[Any]:
        return parts

    return Chain(
        t1.message(),
        Group(
            Chain(t2.message(), t5.message()),
            t3.message(),
            Chain(t4.message(), Group(t6.message(), t7.message())),
        ),
        t8.message(),
    )


def test_seed_dag_runs_in_order_and_pipes_results(app: App) -> None:
    canvas = seed_dag(app)
    with run_worker(app):
        handle = app.submit(canvas)
        # t1=1; t2=2, t5=10; t3=10; t4=4, t6=24, t7=28
        assert handle.result(timeout=30) == [10, 10, [24, 28]]
    history = handle.history()
    check_contract(definition_of(app, history), history)
    assert len(events_of(history, WorkflowCompleted)) == 1
    assert handle.status().archived


def test_issue_example(app: App) -> None:
    @app.actor
    def add(x: int, y: int = 0) -> int:
        return x + y

    canvas = Chain(
        add.message(1, 2),
        Group(add.message(10), add.message(20)),
        WithDelay(add.message_with_options(args=(5, 5), pipe_ignore=True), 0.5),
    )
    with run_worker(app):
        assert app.submit(canvas).result(timeout=30) == 10


def test_group_to_group_releases_each_barrier_once(app: App) -> None:
    @app.actor
    def one(*piped: Any) -> int:
        return 1

    canvas = Chain(
        Group(*(one.message() for _ in range(1000))),
        Group(*(one.message_with_options(pipe_ignore=True) for _ in range(1000))),
    )
    with run_worker(app, concurrency=8):
        handle = app.submit(canvas)
        assert handle.result(timeout=120) == [1] * 1000
    history = handle.history()
    definition = definition_of(app, history)
    assert definition.edge_count == 2000
    releases = events_of(history, BarrierReleased)
    assert len(releases) == 1
    check_contract(definition, history)


def test_nested_five_levels_async_and_pipe_ignore(app: App) -> None:
    @app.actor
    def tag(name: str, *piped: Any) -> list[Any]:
        return [name, *piped]

    @app.actor(queue="io")
    async def slow_tag(name: str, *piped: Any) -> list[Any]:
        await asyncio.sleep(0.01)
        return [name, *piped]

    canvas = Chain(
        tag.message("a"),
        Group(
            Chain(
                slow_tag.message("b"),
                Group(
                    Chain(tag.message("c"), Group(tag.message("d"), slow_tag.message("e"))),
                    tag.message_with_options(args=("f",), pipe_ignore=True),
                ),
            ),
            tag.message("g"),
        ),
        tag.message_with_options(args=("h",), pipe_ignore=True),
    )
    with run_worker(app):
        handle = app.submit(canvas)
        assert handle.result(timeout=30) == ["h"]
    history = handle.history()
    results = {e.node: e.result for e in events_of(history, TaskSucceeded)}
    # b receives a's result; c receives b's; d and e receive c's; f ignores its input.
    assert results[2] == ["b", ["a"]]
    assert ["f"] in results.values()
    assert ["d", ["c", ["b", ["a"]]]] in results.values()
    assert ["e", ["c", ["b", ["a"]]]] in results.values()
    check_contract(definition_of(app, history), history)


def test_delays_are_honoured(app: App) -> None:
    @app.actor
    def step(*piped: Any) -> int:
        return 1

    canvas = Chain(
        step.message(), WithDelay(step.message(), 0.3), step.message_with_options(delay=0.2)
    )
    with run_worker(app):
        handle = app.submit(canvas)
        handle.result(timeout=30)
    history = handle.history()
    by_seq = {e.seq: e for e in history}
    for entry in history:
        event = entry.event
        if isinstance(event, TaskEnqueued) and event.delay_ms:
            started = next(
                e
                for e in history
                if isinstance(e.event, TaskStarted)
                and e.event.node == event.node
                and e.event.attempt == event.attempt
            )
            due = by_seq[event.cause].time_ms + event.delay_ms
            assert started.time_ms >= due, (event, started)
    delays = sorted(e.delay_ms for e in events_of(history, TaskEnqueued))
    assert delays == [0, 200, 300]


def test_empty_groups_yield_empty_lists(app: App) -> None:
    @app.actor
    def echo(*piped: Any) -> list[Any]:
        return list(piped)

    with run_worker(app):
        assert app.submit(Group()).result(timeout=10) == []
        assert app.submit(Chain(echo.message(), Group())).result(timeout=10) == []
        assert app.submit(Chain(Group(), echo.message())).result(timeout=10) == [[]]
        assert app.submit(Chain(echo.message(), Group(), echo.message())).result(timeout=10) == [[]]


def test_failure_fails_the_workflow(app: App) -> None:
    @app.actor
    def boom() -> None:
        raise RuntimeError("kaput")

    @app.actor
    def never(*piped: Any) -> None:
        raise AssertionError("must not run")

    with run_worker(app):
        handle = app.submit(Chain(boom.message(), never.message()))
        with pytest.raises(ResultFailure, match="kaput") as info:
            handle.result(timeout=10)
    assert info.value.status == "failed"
    assert info.value.error["type"] == "RuntimeError"
    assert info.value.error["node"] == 0
    history = handle.history()
    assert not [e for e in events_of(history, TaskEnqueued) if e.node != 0]


def test_retry_then_success(app: App, r: redis.Redis) -> None:
    @app.actor(max_retries=2, min_backoff=0.05, max_backoff=0.1)
    def flaky() -> str:
        if r.incr("flaky") < 3:
            raise ValueError("not yet")
        return "ok"

    with run_worker(app):
        handle = app.submit(flaky.message())
        assert handle.result(timeout=30) == "ok"
    attempts = [e.attempt for e in events_of(handle.history(), TaskEnqueued)]
    assert attempts == [1, 2, 3]


def test_result_timeout(app: App) -> None:
    from streamflow import ResultTimeout

    @app.actor
    def f() -> int:
        return 1

    handle = app.submit(f.message())  # no worker
    with pytest.raises(ResultTimeout, match=r"within 0\.2 s"):
        handle.result(timeout=0.2)
    assert handle.status().counts["queued"] == 1


def test_a_read_of_the_queues_ends_before_the_socket_timeout(redis_binary: str) -> None:
    """A worker whose reads would wait longer than its connection allows is refused (each
    would fail as a timeout); a URL's socket_timeout sets what it allows."""
    from streamflow.store.embedded import EmbeddedRedis

    with EmbeddedRedis(binary=redis_binary, appendfsync="no") as server:
        app = App(f"{server.url}?socket_timeout=0.5")

        @app.actor
        def hello() -> str:
            return "hello"

        for block_ms in (500, 0):
            with pytest.raises(ValueError, match=rf"shorter than 500 \(got {block_ms}\)"):
                app.worker(block_ms=block_ms)
        reads = command_calls(app.client).get("xreadgroup", 0)
        with capture_logs() as logs, app.worker(concurrency=1, block_ms=400):
            # Idle: reads that end empty after 400 ms each, within the 0.5 s timeout.
            wait_until(lambda: command_calls(app.client).get("xreadgroup", 0) >= reads + 6, 10)
            assert hello.send().get_result(block=True, timeout=10) == "hello"
        assert not [e for e in logs if e["event"] == "redis_unreachable"]
        app.close()
