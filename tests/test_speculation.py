"""Decisions made ahead of an outcome (Worker(speculate=True)): they go in the outcome's
round trip when the guess holds, and a wrong guess changes nothing but the round trips."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import pytest
import redis

from streamflow import App, Chain, Group, WithDelay, audit, replay
from streamflow.model import schema
from streamflow.model.events import TaskEnqueued, TaskFailed, TaskStarted, encode_event
from streamflow.model.schema import WORKER_GROUP
from streamflow.runtime.projector import Projector
from streamflow.runtime.recorder import Recorder
from streamflow.store import scripts
from streamflow.store.scripts import Reply, reply_code
from tests.helpers import check_contract, definition_of, hold, start_call
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many speculations were made and how many held."""
    counts: Counter[str] = Counter()
    guess, settle = Recorder._guess, Projector.settle
    guessed: list[Any] = []

    def counting_guess(self: Recorder, *args: Any) -> Any:
        made = guess(self, *args)
        counts["made" if made is not None else "declined"] += 1
        if made is not None:
            guessed.append(made.decisions)
        return made

    def counting_settle(self: Projector, workflow_id: str, decisions: Any, *args: Any) -> None:
        # Settled with decisions that were guessed: the guess held.
        counts["held"] += any(decisions is made for made in guessed)
        settle(self, workflow_id, decisions, *args)

    monkeypatch.setattr(Recorder, "_guess", counting_guess)
    monkeypatch.setattr(Projector, "settle", counting_settle)
    return counts


def test_a_chain_is_projected_in_its_outcomes_round_trips(app: App, counted: Counter[str]) -> None:
    @app.actor
    def add(x: int, *piped: int) -> int:
        return x + sum(piped)

    canvas = Chain(add.message(1), WithDelay(add.message(2), 0.05), add.message(3))
    with app.worker(concurrency=4):
        handle = app.submit(canvas)
        assert handle.result(timeout=30) == 6
    assert counted["held"] == counted["made"] == 3
    history = handle.history()
    definition = definition_of(app, history)
    check_contract(definition, history)
    assert audit(history, definition) == [] and replay(history, definition) == []
    # The delay counts from the outcome's time, which only the script knew.
    by_seq = {e.seq: e for e in history}
    delayed = next(e for e in history if isinstance(e.event, TaskEnqueued) and e.event.delay_ms)
    started = next(
        e
        for e in history
        if isinstance(e.event, TaskStarted) and e.event.node == delayed.event.node
    )
    assert started.time_ms >= by_seq[delayed.event.cause].time_ms + 50


def test_a_group_in_flight_is_not_guessed(app: App, counted: Counter[str]) -> None:
    @app.actor
    def one(*piped: Any) -> int:
        return 1

    with app.worker(concurrency=4):
        handle = app.submit(Chain(Group(*(one.message() for _ in range(20))), one.message()))
        assert handle.result(timeout=30) == 1
    # Only a task alone in flight is guessed: the last of the group, perhaps, and the tail.
    assert counted["declined"] >= 10
    history = handle.history()
    assert audit(history, definition_of(app, history)) == []


def test_a_wrong_guess_falls_back_to_a_projection(
    app: App, r: redis.Redis, counted: Counter[str]
) -> None:
    @app.actor
    def gate(*piped: Any) -> str:
        hold(r, "gate", 30)
        return "opened"

    @app.actor
    def after(value: str) -> str:
        return value + "!"

    with app.worker(concurrency=2):
        handle = app.submit(Chain(gate.message(), after.message()))
        wait_until(lambda: any(isinstance(e.event, TaskStarted) for e in handle.history()), 10)
        # The same message delivered again while the body runs: a second TaskStarted the
        # worker's fold has not seen, so its guess of the outcome's position is wrong.
        queue = app.keys.queue(0, "default")
        (pending,) = r.xpending_range(queue, WORKER_GROUP, "-", "+", 10)
        msg_id = pending["message_id"].decode()
        again = TaskStarted(node=0, attempt=1, worker="other", msg_id=msg_id)
        raw = app.scripts.run(
            start_call(app, handle.id, queue=queue, msg_id=msg_id, started=encode_event(again))
        )
        assert reply_code(raw) is Reply.RUN
        r.lpush("gate", 1)
        assert handle.result(timeout=30) == "opened!"
    assert counted["made"] >= 1 and counted["held"] < counted["made"]
    history = handle.history()
    definition = definition_of(app, history)
    check_contract(definition, history)
    assert audit(history, definition) == [] and replay(history, definition) == []


def test_the_guard_refuses_decisions_whose_outcome_is_missing(app: App, r: redis.Redis) -> None:
    @app.actor(queue="nobody-reads")
    def never(*piped: Any) -> None:
        pass

    handle = app.submit(Chain(never.message(), never.message()))
    definition = definition_of(app, handle.history())
    before = r.xlen(app.keys.log(handle.id))
    call = app.projector.apply_call(
        handle.id,
        definition,
        [TaskEnqueued(node=2, attempt=1, cause=before + 1)],
        {},
        expected=2,
        folded=(before, handle.history()[-1].stream_id),
        trigger=None,
        done=False,
        guard=("out:0:1", before + 1, "0" * 40),
    )
    assert app.scripts.run(call) == [b"CONFLICT", -2]
    assert r.xlen(app.keys.log(handle.id)) == before


def test_the_guard_refuses_decisions_made_from_another_runs_outcome(
    app: App, r: redis.Redis
) -> None:
    """Two runs of one attempt guess the same position for their outcomes: the decisions
    of the run whose outcome was not recorded (another retry delay) must not apply."""

    @app.actor(queue="nobody-reads", max_retries=3)
    def flaky(*piped: Any) -> None:
        pass

    handle = app.submit(Chain(flaky.message(), flaky.message()))
    definition = definition_of(app, handle.history())
    queue = app.keys.queue(0, "nobody-reads")
    ((msg_id, _),) = r.xrange(queue)
    log = app.keys.log(handle.id)
    started = TaskStarted(node=0, attempt=1, worker="w", msg_id=msg_id.decode())
    assert (
        reply_code(
            app.scripts.run(
                start_call(
                    app,
                    handle.id,
                    queue=queue,
                    msg_id=msg_id.decode(),
                    started=encode_event(started),
                )
            )
        )
        is Reply.RUN
    )
    error = {"type": "Boom", "message": "", "traceback": ""}
    recorded, other = (
        TaskFailed(node=0, attempt=1, error=error, retry_delay_ms=delay, cause=2)
        for delay in (8, 7)
    )
    call = scripts.outcome(
        wf=app.keys.workflow(handle.id),
        queue=queue,
        node=0,
        attempt=1,
        event=encode_event(recorded),
        kind=schema.Outcome.RETRY,
        decrement_key="",
        decrement_head=b"",
        decrement_tail=b"",
        wake=b"wake",
        grace_ms=0,
        catch_up_after="",
        catch_up_count=0,
        finalizer=False,
        result_field="",
        result_blob=b"",
        quiet_reaches=0,
        counter="",
        quiet_below=0,
        msg_id="",
    )
    raw = app.scripts.run(call)
    assert reply_code(raw) is Reply.OK
    seq, stream_id = int(raw[1]), raw[2].decode()

    def apply(outcome: TaskFailed) -> Any:
        retry = TaskEnqueued(node=0, attempt=2, delay_ms=outcome.retry_delay_ms or 0, cause=seq)
        call = app.projector.apply_call(
            handle.id,
            definition,
            [retry],
            {},
            expected=2,
            folded=(seq - 1, r.xrevrange(log, "(" + stream_id, "-", count=1)[0][0].decode()),
            trigger=None,
            done=False,
            guard=("out:0:1", seq, hashlib.sha1(encode_event(outcome)).hexdigest()),
        )
        return app.scripts.run(call)

    assert apply(other) == [b"CONFLICT", -2]
    assert r.xlen(log) == seq
    assert reply_code(apply(recorded)) is Reply.OK
    (enqueued,) = [e.event for e in handle.history() if e.seq > seq]
    assert enqueued == TaskEnqueued(node=0, attempt=2, delay_ms=8, cause=seq)


def test_a_guess_leaves_the_cached_fold_as_it_was() -> None:
    # Found by the Redis machine once resumes made refused outcomes common: folding a
    # final, exhausted failure into the guess's trial copy added its node to the cached
    # fold's own ``exhausted`` set.
    from streamflow.model.events import Entry
    from streamflow.model.state import State, fold
    from streamflow.runtime.recorder import _trial_copy

    cached = State(status="running", attempt={0: 2})
    before = cached.copy()
    trial = _trial_copy(cached, None)
    failed = TaskFailed(node=0, attempt=2, error={"type": "E"}, exhausted=True)
    fold(trial, Entry(seq=1, stream_id="0-0", event=failed))
    assert trial.exhausted == {0} and trial.failures
    assert cached == before
