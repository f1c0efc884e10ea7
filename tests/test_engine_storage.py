"""
The engine's state on a real Redis: what its index is told and how it is rebuilt, one
stored definition and small queue messages, the archive, and what a waiting caller reads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, Chain, Group
from streamflow.api import reads as read_plans
from streamflow.model.events import TaskStarted, TaskSucceeded
from tests.helpers import (
    check_contract,
    definition_of,
    events_of,
    hold,
    pattern_subscriptions,
    run_worker,
    start_call,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


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
