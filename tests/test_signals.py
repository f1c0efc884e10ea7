"""Signals against a real Redis and worker: ``Signal(name)`` nodes complete with the
payload of ``app.signal``, sent before or while they wait; a duplicate is reported; a
timeout is a failure with the usual policy; every log audits clean and replays."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import pytest
import redis

from streamflow import (
    App,
    Chain,
    Failure,
    Group,
    ResultFailure,
    Signal,
    SignalError,
)
from streamflow.model.events import (
    SignalReceived,
    TaskEnqueued,
    TaskStarted,
    TaskSucceeded,
    encode_event,
)
from streamflow.runtime.projector import APPLY_CHUNK
from streamflow.runtime.signals import signal_plan, signalled
from streamflow.store.calls import Call
from streamflow.store.plan import Command, run
from streamflow.store.scripts import Reply, reply_code
from tests.helpers import audited, cli, definition_of, events_of, start_call
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def actors(app: App) -> Any:
    @app.actor
    def double(x: int) -> int:
        return 2 * x

    @app.actor
    def describe(x: int, approval: dict[str, Any]) -> str:
        return f"{x} approved by {approval['by']}"

    return double, describe


def waiting(app: App, workflow_id: str, name: str) -> int:
    """The attempt the node waiting for ``name`` is at (0: not reached)."""
    history = app.history(workflow_id)
    (node,) = definition_of(app, history).signals[name]
    attempts = [e.attempt for e in events_of(history, TaskEnqueued) if e.node == node]
    return max(attempts, default=0)


def test_a_signal_completes_the_node_waiting_for_it(app: App) -> None:
    double, describe = actors(app)
    canvas = Chain(double.message(21), Signal("approved"), describe.piped(42))
    with app.worker(concurrency=2):
        handle = app.submit(canvas)
        wait_until(
            lambda: waiting(app, handle.id, "approved"), 10, message="the signal node reached"
        )
        assert app.signal(handle.id, "approved", {"by": "ann"}, sender="tests") is True
        assert handle.result(timeout=10) == "42 approved by ann"
        assert app.signal(handle.id, "approved", {"by": "bob"}) is False  # a duplicate
    history = audited(app, handle.id)
    (received,) = events_of(history, SignalReceived)
    assert (received.name, received.payload, received.sender) == (
        "approved",
        {"by": "ann"},
        "tests",
    )
    (node,) = definition_of(app, history).signals["approved"]
    taken = [e for e in events_of(history, TaskSucceeded) if e.node == node]
    assert [(e.attempt, e.result) for e in taken] == [(1, {"by": "ann"})]


def test_a_signal_sent_before_its_node_is_reached_is_kept(app: App) -> None:
    double, describe = actors(app)
    handle = app.submit(Chain(double.message(2), Signal("go"), describe.piped(7)))
    assert app.signal(handle.id, "go", {"by": "early"}) is True  # no worker yet
    assert app.signal(handle.id, "go", {"by": "again"}) is False
    with app.worker(concurrency=2):
        assert handle.result(timeout=10) == "7 approved by early"
    audited(app, handle.id)


@pytest.mark.parametrize("first", ["task", "signal"])
def test_a_signal_node_counts_toward_its_group_and_the_end(app: App, first: str) -> None:
    double, _ = actors(app)
    handle = app.submit(Group(double.message(1), Signal("s"), double.message(3)))
    if first == "signal":
        app.signal(handle.id, "s", "payload")
    with app.worker(concurrency=2):
        if first == "task":
            wait_until(
                lambda: app.handle(handle.id).status().counts["succeeded"] == 2,
                10,
                message="both tasks done",
            )
            app.signal(handle.id, "s", "payload")
        assert handle.result(timeout=10) == [2, "payload", 6]
    audited(app, handle.id)


def test_a_timeout_fails_the_node_with_the_usual_policy(app: App) -> None:
    double, _ = actors(app)
    failing = app.submit(Chain(Signal("never", timeout=0.2), double.piped()))
    tolerated = app.submit(
        Group(Signal("late", timeout=0.2, allow_failure=True), double.message(4))
    )
    with app.worker(concurrency=2):
        with pytest.raises(ResultFailure) as raised:
            failing.result(timeout=10)
        error = raised.value.error
        assert (
            error["type"] == "SignalTimeout"
            and "no signal 'never' within 0.2 s" in error["message"]
        )
        late, eight = tolerated.result(timeout=10)
        assert isinstance(late, Failure) and late.type == "SignalTimeout" and eight == 8
        with pytest.raises(SignalError, match="has ended"):
            app.signal(failing.id, "never", 1)
    audited(app, failing.id)


def test_a_timed_out_wait_is_retried_and_a_later_signal_taken(app: App) -> None:
    double, _ = actors(app)
    handle = app.submit(
        Chain(Signal("retry", timeout=0.2, max_retries=3, min_backoff=0.1), double.piped())
    )
    with app.worker(concurrency=2):
        wait_until(lambda: waiting(app, handle.id, "retry") >= 2, 10, message="a second wait")
        app.signal(handle.id, "retry", 5)
        assert handle.result(timeout=10) == 10
    history = audited(app, handle.id)
    (success,) = [e for e in events_of(history, TaskSucceeded) if e.result == 5]
    assert success.attempt >= 2 and success.result == 5


def test_bad_signals_are_refused_with_what_was_expected(app: App) -> None:
    double, _ = actors(app)
    handle = app.submit(Chain(Signal("a"), Signal("b"), double.piped()))
    with pytest.raises(SignalError, match=r"waits for no signal 'c' \(its signals: 'a', 'b'\)"):
        app.signal(handle.id, "c")
    with pytest.raises(SignalError, match="no workflow"):
        app.signal(app.new_workflow_id(), "a")
    with pytest.raises(SignalError, match="over the limit"):
        app.signal(handle.id, "a", os.urandom(70_000))  # incompressible
    with pytest.raises(SignalError, match="payload of signal 'a'"):
        app.signal(handle.id, "a", object())
    with pytest.raises(SignalError, match="non-empty string"):
        app.signal(handle.id, "")
    with pytest.raises(ValueError, match="non-empty string"):
        Signal("")
    with pytest.raises(ValueError, match="positive"):
        Signal("x", timeout=0)
    with pytest.raises(ValueError, match="'@' are streamflow's own"):
        app.actor(actor_name="@signal:x")(lambda: None)


def test_signals_from_asyncio(app: App) -> None:
    double, _ = actors(app)

    async def main() -> Any:
        handle = await app.submit_async(Chain(Signal("go"), double.piped()))
        assert await app.signal_async(handle.id, "go", 4) is True
        assert await app.signal_async(handle.id, "go", 5) is False
        with app.worker(concurrency=1):
            return await handle.result(timeout=10)

    try:
        assert asyncio.run(main()) == 8
    finally:
        asyncio.run(app.aclose())


def test_a_signal_racing_its_timeout_has_one_outcome(app: App, r: redis.Redis) -> None:
    double, _ = actors(app)
    handles = [app.submit(Chain(Signal("race", timeout=0.05), double.piped())) for _ in range(20)]
    with app.worker(concurrency=4):
        for handle in handles:
            with contextlib.suppress(SignalError):  # timed out and failed first
                app.signal(handle.id, "race", 1)
        for handle in handles:
            try:
                assert handle.result(timeout=10) == 2
            except ResultFailure as failed:
                assert failed.error["type"] == "SignalTimeout"
    for handle in handles:
        audited(app, handle.id)


def test_a_signal_is_numbered_again_when_an_event_lands_after_its_read(app: App) -> None:
    """The node's timeout message delivered between the signal's read of the log and its
    apply: the TaskStarted takes the sequence number the signal was decided at, so that
    apply is refused and the signal sent again after it, its decisions naming it as
    their cause (replay finds no divergence)."""
    double, _ = actors(app)
    handle = app.submit(Chain(Signal("race", timeout=60), double.piped()))
    started = encode_event(TaskStarted(node=0, attempt=1, worker="w", msg_id="1-0"))
    execute, slipped, applies = app.projector.store.execute, [], []

    def racing(commands: list[Command]) -> list[Any]:
        if commands and isinstance(commands[0], Call) and commands[0].script == "apply":
            if not slipped:
                slipped.append(app.scripts.run(start_call(app, handle.id, started=started)))
            applies.append(commands[0])
        return execute(commands)

    applied = run(signal_plan(app.projector, handle.id, "race", 1, "tests"), racing)
    assert reply_code(slipped[0]) is Reply.RUN and len(applies) == 2
    assert signalled(app.projector, handle.id, applied)
    with app.worker(concurrency=1):
        assert handle.result(timeout=10) == 2
    history = audited(app, handle.id)
    kinds = [type(entry.event).__name__ for entry in history[1:4]]
    assert kinds == ["TaskEnqueued", "TaskStarted", "SignalReceived"]
    assert {entry.event.cause for entry in history[4:8]} == {history[3].seq}


def test_a_signal_lands_on_a_busy_workflow_and_replays(app: App) -> None:
    """Starts, outcomes and decrements of other tasks come between the signal's read and
    its apply: it is numbered again until it lands, and the log audits and replays."""
    double, _ = actors(app)
    waiting_then = Chain(Signal("go"), double.piped())
    handle = app.submit(Group(waiting_then, Group(*[double.message(i) for i in range(400)])))
    with app.worker(concurrency=8):
        wait_until(lambda: len(handle.history()) > 200, 30, message="the group under way")
        assert app.signal(handle.id, "go", 21) is True
        results = handle.result(timeout=60)
    assert results[0] == 42 and results[1] == [2 * i for i in range(400)]
    history = audited(app, handle.id)
    (received,) = (e for e in history if isinstance(e.event, SignalReceived))
    (taken,) = (e for e in history if isinstance(e.event, TaskSucceeded) and e.event.node == 0)
    assert taken.seq == received.seq + 1 and taken.event.cause == received.seq


def test_a_signal_that_releases_more_than_a_chunk(app: App) -> None:
    """What a signal decides is applied a chunk at a time, the signal in the first."""

    @app.actor
    def index(i: int, *piped: Any) -> int:
        return i

    width = APPLY_CHUNK + 50
    handle = app.submit(Chain(Signal("go"), Group(*[index.message(i) for i in range(width)])))
    assert app.signal(handle.id, "go", 1) is True
    with app.worker(concurrency=8):
        assert handle.result(timeout=60) == list(range(width))
    audited(app, handle.id)


def test_the_cli_sends_a_signal(app: App, redis_url: str) -> None:
    double, _ = actors(app)
    handle = app.submit(Chain(Signal("go"), double.piped()))
    assert "signal 'go' #0  awaiting" in cli(redis_url, "show", handle.id).stdout
    sent = cli(redis_url, "signal", handle.id, "go", "--json", "21")
    assert sent.stdout == f"signal 'go' sent to {handle.id}\n"
    again = cli(redis_url, "signal", handle.id, "go", "--json", "1", code=1)
    assert "had received signal 'go' already" in again.stdout
    wrong = cli(redis_url, "signal", handle.id, "stop", code=1)
    assert "SignalError" in wrong.stderr and "its signals: 'go'" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    bad = cli(redis_url, "signal", handle.id, "go", "--json", "{oops", code=1)
    assert "--json is not JSON" in bad.stderr
    (received,) = events_of(app.history(handle.id), SignalReceived)
    assert (received.payload, received.sender) == (21, "streamflow signal")
    with app.worker(concurrency=1):
        assert handle.result(timeout=10) == 42
