"""The engine end to end on a real Redis: submit, run on workers, read results."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, Chain, EncodeError, Group, ResultFailure, WithDelay
from streamflow.api import reads as read_plans
from streamflow.model.events import (
    BarrierReleased,
    TaskEnqueued,
    TaskStarted,
    TaskSucceeded,
    WorkflowCompleted,
)
from streamflow.runtime.worker import Worker
from tests.helpers import (
    check_contract,
    definition_of,
    events_of,
    hold,
    pattern_subscriptions,
    start_call,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def run_worker(app: App, **options: Any) -> Worker:
    return app.worker(concurrency=options.pop("concurrency", 4), **options).start()


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


def test_outcomes_that_decide_nothing_are_not_projected(app: App) -> None:
    """A group member's success short of its barrier, and a sink's short of the
    workflow's end, are acknowledged by the outcome script alone."""

    @app.actor
    def one(*piped: Any) -> int:
        return 1

    k = 30
    canvas = Chain(
        Group(*(one.message() for _ in range(k))),
        Group(*(one.message_with_options(pipe_ignore=True) for _ in range(k))),
    )
    worker = app.worker(concurrency=4)
    inline: list[int] = []
    project = worker.projector.project

    def counted(workflow_id: str, cause: Any, *args: Any, **kwargs: Any) -> Any:
        if cause is not None:
            inline.append(cause.seq)
        return project(workflow_id, cause, *args, **kwargs)

    worker.projector.project = counted  # type: ignore[method-assign]
    with worker.start():
        assert app.submit(canvas).result(timeout=60) == [1] * k
    # The last member of each group (at most): 2k outcomes, 2 projections.
    assert len(inline) <= 2, inline


def test_a_rebuilt_index_counts_the_sinks_already_done(app: App, r: redis.Redis) -> None:
    """The end's count is derived like a barrier's: after a rebuild, the last sink's
    success still ends the workflow."""

    @app.actor
    def quick(*piped: Any) -> str:
        return "quick"

    @app.actor
    def gate(*piped: Any) -> str:
        hold(r, "gate", 30)
        return "opened"

    canvas = Chain(
        quick.message(),
        Group(quick.message(), quick.message(), quick.message(), gate.message()),
    )
    worker = run_worker(app)
    with worker:
        handle = app.submit(canvas)
        wait_until(
            lambda: len(events_of(handle.history(), TaskSucceeded)) == 4, 10, message="3 sinks"
        )
        assert r.hget(app.keys.idx(handle.id), "bc:e") == b"3"
        r.delete(app.keys.idx(handle.id))
        worker.projector.rebuild(handle.id)
        assert r.hget(app.keys.idx(handle.id), "bc:e") == b"3"
        r.lpush("gate", 1)
        assert handle.result(timeout=30) == ["quick", "quick", "quick", "opened"]
    history = handle.history()
    check_contract(definition_of(app, history), history)


def test_a_waiting_caller_reads_the_log_once_it_has_ended(
    app: App, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wake-ups before the end cost the waiter one index read each, not a log read; the
    App's one subscription tells every waiter."""

    @app.actor
    def gate() -> str:
        hold(r, "gate", 30)
        return "opened"

    handle = app.submit(gate.message())
    reads: list[int] = []
    snapshot_of = read_plans.snapshot_of

    def counted(*args: Any) -> Any:
        reads.append(1)
        return snapshot_of(*args)

    monkeypatch.setattr(read_plans, "snapshot_of", counted)
    with run_worker(app), ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(handle.result, 30)
        wait_until(lambda: pattern_subscriptions(r) == 1, 10)
        for _ in range(5):  # as spurious notifications would
            r.publish(app.keys.done_channel(handle.id), "0")
        r.lpush("gate", 1)
        assert waiting.result(timeout=30) == "opened"
    assert len(reads) == 1  # once it has ended; before, its status only


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


def test_definition_stored_once_and_messages_small(app: App, r: redis.Redis) -> None:
    @app.actor
    def f(i: int) -> int:
        return i

    for i in range(100):
        app.submit(Group(f.message(i), f.message(i + 1), f.message(i + 2)))
    # Once per shard the workflows went to.
    assert len(list(r.scan_iter("sf:*:def:*"))) == app.shards

    app.submit(Group(*(f.message(i) for i in range(10_000))))
    queues = [app.keys.queue(shard, "default") for shard in range(app.shards)]
    sizes = [len(fields[b"m"]) for queue in queues for _, fields in r.xrange(queue)]
    assert len(sizes) == 10_300
    assert max(sizes) <= 200, max(sizes)


def test_unencodable_argument_writes_nothing(app: App, r: redis.Redis) -> None:
    @app.actor
    def add(x: Any, y: Any) -> Any:
        return x + y

    class Foo:
        pass

    before = r.dbsize()
    with pytest.raises(
        EncodeError, match=r"args\[1\] of add: object of type Foo cannot be encoded"
    ):
        app.submit(Chain(add.message(1, 2), add.message(1, Foo())))
    assert r.dbsize() == before


def test_non_canvas_is_a_type_error(app: App) -> None:
    with pytest.raises(TypeError, match="got 42 of type int"):
        app.submit(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'oops'"):
        Group("oops")  # type: ignore[arg-type]


def test_corrupt_queue_message_goes_to_dead_letters(app: App, r: redis.Redis) -> None:
    @app.actor
    def f() -> int:
        return 7

    queue = app.keys.queue(0, "default")
    with run_worker(app):
        r.xadd(queue, {"m": b"\xffnot a message"})
        wait_until(lambda: r.xlen("sf:dead") == 1, 10, message="dead letter")
        assert app.submit(f.message()).result(timeout=10) == 7
    ((_, fields),) = r.xrange("sf:dead")
    assert fields[b"data"] == b"\xffnot a message"
    assert b"undecodable" in fields[b"reason"]
    assert r.xlen(queue) == 0


def test_unknown_actor_fails_as_poison(app: App, r: redis.Redis, redis_url: str) -> None:
    @app.actor
    def mystery() -> None:
        raise AssertionError("this worker must not know me")

    handle = app.submit(mystery.message())
    other = App(redis_url)

    @other.actor
    def known() -> None:
        pass

    with (
        capture_logs() as logs,
        run_worker(other, lease_ms=100, max_unknown_deliveries=3),
        pytest.raises(ResultFailure, match="unknown after 3 deliveries"),
    ):
        handle.result(timeout=30)
    ((_, fields),) = r.xrange("sf:dead")
    assert b"mystery" in fields[b"reason"]
    assert any(log["event"] == "message_dead_lettered" for log in logs)
    other.close()


def test_rebuild_after_index_deleted(app: App, r: redis.Redis) -> None:
    @app.actor
    def gate(*piped: Any) -> str:
        hold(r, "gate", 30)
        return "opened"

    @app.actor
    def after(value: str) -> str:
        return value + "!"

    with capture_logs() as logs, run_worker(app):
        handle = app.submit(Chain(gate.message(), after.message()))
        wait_until(lambda: any(isinstance(e.event, TaskStarted) for e in handle.history()), 10)
        r.delete(app.keys.idx(handle.id))
        r.lpush("gate", 1)
        assert handle.result(timeout=30) == "opened!"
    assert any(log["event"] == "index_rebuilt" for log in logs)
    history = handle.history()
    check_contract(definition_of(app, history), history)


def test_archived_workflow_is_never_resurrected(app: App, r: redis.Redis) -> None:
    @app.actor
    def f() -> int:
        return 1

    with run_worker(app):
        handle = app.submit(f.message())
        handle.result(timeout=10)
    wait_until(lambda: r.exists(app.keys.archive(handle.id)), 10)
    reply = app.scripts.run(start_call(app, handle.id, msg_id="1-1"))
    assert reply[0] == b"STALE"
    assert not r.exists(app.keys.log(handle.id))
    assert len(handle.history()) == 5


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
        with capture_logs() as logs, app.worker(concurrency=1, block_ms=400):
            time.sleep(1.5)  # idle: reads that end empty, each within the timeout
            assert hello.send().get_result(block=True, timeout=10) == "hello"
        assert not [e for e in logs if e["event"] == "redis_unreachable"]
        app.close()
