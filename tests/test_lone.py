"""Lone tasks (``send()``): run as soon as read, ended in one script that writes the
archive, with the same five events as any one-task workflow; a long one has its start
recorded while it runs; whatever is not the quick success goes the ordinary way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from streamflow import App, Chain, ResultFailure, audit, replay
from streamflow.model.events import (
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowSubmitted,
)
from streamflow.model.messages import decode_task, shard_of
from tests.helpers import active_workflows, command_calls, definition_of
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def _kinds(history: list[Any]) -> list[type]:
    return [type(entry.event) for entry in history]


def _clean(app: App, history: list[Any]) -> None:
    definition = definition_of(app, history)
    assert audit(history, definition) == []
    assert replay(history, definition) == []


def test_a_lone_task_ends_in_one_step_with_the_five_events(app: App, r: redis.Redis) -> None:
    @app.actor
    def add(a: int, b: int) -> int:
        return a + b

    handle = add.send(2, 3)
    (entry,) = r.xrange(app.keys.queue(shard_of(handle.id), "default"))
    assert decode_task(entry[1][b"m"]).lone is not None  # its arguments ride along
    # A chain of one is no lone task: its message carries no arguments.
    chain = app.submit(Chain(add.message(1, 1), add.message(1)))
    queue = app.keys.queue(shard_of(chain.id), "default")
    assert decode_task(r.xrange(queue)[-1][1][b"m"]).lone is None
    with app.worker():
        assert handle.result(timeout=30) == 5
    history = handle.history()
    assert _kinds(history) == [
        WorkflowSubmitted,
        TaskEnqueued,
        TaskStarted,
        TaskSucceeded,
        WorkflowCompleted,
    ]
    assert [e.seq for e in history] == [1, 2, 3, 4, 5]
    ids = [tuple(map(int, e.stream_id.split("-"))) for e in history]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert handle.status().archived and handle.status().status == "completed"
    assert not r.exists(app.keys.log(handle.id)) and not r.sismember(app.keys.active(0), handle.id)
    _clean(app, history)


def test_a_lone_task_costs_few_commands(app: App, r: redis.Redis) -> None:
    @app.actor
    def noop() -> int:
        return 1

    with app.worker(concurrency=8, timer=False, recovery=False):
        noop.send().result(timeout=30)
        before = command_calls(r)
        handles = [noop.send() for _ in range(500)]
        wait_until(lambda: not active_workflows(app, r), 60, message="the tasks to end")
        after = command_calls(r)
    # Not this test's own polling: a SCARD per shard each time it looks (a cluster has many).
    ran = sum(after.values()) - sum(before.values()) - (after["scard"] - before.get("scard", 0))
    # The submit script (13 commands), the lone script (12), reads and beats shared.
    assert ran / 500 < 27, ran / 500
    assert app.results(handles) == [1] * 500


def _held(app: App) -> tuple[Any, threading.Event]:
    """A lone task that runs until the event is set."""
    gate = threading.Event()

    @app.actor
    def held() -> str:
        gate.wait(30)
        return "done"

    return held.send(), gate


def test_a_long_lone_task_has_its_start_recorded_while_it_runs(app: App) -> None:
    handle, gate = _held(app)
    with app.worker():
        wait_until(
            lambda: TaskStarted in _kinds(handle.history()), 10, message="the start recorded"
        )
        assert handle.status().counts["running"] == 1
        gate.set()
        assert handle.result(timeout=30) == "done"
    history = handle.history()
    assert _kinds(history).count(TaskStarted) == 1
    assert handle.status().archived
    _clean(app, history)


def test_a_failing_lone_task_retries_the_ordinary_way(app: App, r: redis.Redis) -> None:
    @app.actor(max_retries=2, min_backoff=0.01)
    def flaky() -> str:
        if r.incr("tries") < 3:
            raise RuntimeError("not yet")
        return "third time"

    @app.actor
    def broken() -> None:
        raise ValueError("never")

    with app.worker():
        handle, failed = flaky.send(), broken.send()
        assert handle.result(timeout=30) == "third time"
        with pytest.raises(ResultFailure, match="never"):
            failed.result(timeout=30)
    history = handle.history()
    assert _kinds(history).count(TaskStarted) == 3
    assert _kinds(history).count(TaskFailed) == 2
    _clean(app, history)
    _clean(app, failed.history())


def test_a_lone_task_cancelled_while_it_runs_ends_cancelled(app: App) -> None:
    handle, gate = _held(app)
    with app.worker():
        wait_until(lambda: TaskStarted in _kinds(handle.history()), 10)
        assert handle.cancel("enough")
        gate.set()
        with pytest.raises(ResultFailure):
            handle.result(timeout=30)
    history = handle.history()
    assert WorkflowCancelled in _kinds(history)
    # (replay names any cancel a divergence: an operator's, not a decision's)
    assert audit(history, definition_of(app, history)) == []


def test_a_lone_task_cut_by_a_killed_worker_runs_again(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    def body(*args: Any) -> Any:
        raise AssertionError("runs in the worker process only")

    slow = app.actor(body, actor_name="slow")
    handle = slow.send(1.5)
    env = {**os.environ, "STREAMFLOW_REDIS_URL": redis_url}
    command = [sys.executable, "-m", "streamflow.cli", "worker", "tests.sample_app:app"]
    command += ["--url", redis_url, "--processes", "1"]

    def spawn(log: str) -> subprocess.Popen[bytes]:
        out = (tmp_path / log).open("wb")
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)

    first = spawn("first.log")
    try:
        wait_until(lambda: int(r.get("runs:slow") or 0) == 1, 30, message="the body to start")
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = spawn("second.log")
        try:
            assert handle.result(timeout=60) == "slow done"
        finally:
            second.kill()
            second.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert int(r.get("runs:slow") or 0) == 2  # the cut body, and once more
    history = handle.history()
    assert _kinds(history)[-2:] == [TaskSucceeded, WorkflowCompleted]
    _clean(app, history)


def test_the_sweep_sends_no_copy_of_a_lone_task_queued_or_running(
    app: App, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from structlog.testing import capture_logs

    from streamflow.runtime.sweep import StuckSweep

    @app.actor(queue="nobody-serves")
    def stranded() -> None:
        pass

    ran: list[int] = []
    gate = threading.Event()

    @app.actor
    def slowish() -> str:
        ran.append(1)
        gate.wait(30)
        return "ok"

    looked: list[str] = []  # the workflows the sweep looked for lost messages of
    resend = StuckSweep._resend_lost

    def counted(self: StuckSweep, workflow_id: str) -> int:
        looked.append(workflow_id)
        return resend(self, workflow_id)

    monkeypatch.setattr(StuckSweep, "_resend_lost", counted)
    stuck = stranded.send()
    sweeping = {"stuck_after_s": 0.1, "sweep_interval_s": 0.1}
    with capture_logs() as logs, app.worker(queues=["default"], **sweeping):
        running = slowish.send()
        for handle in (stuck, running):  # swept again and again, queued or running
            wait_until(lambda h=handle: looked.count(h.id) >= 3, 10, message=handle.id)
        gate.set()
        assert running.result(timeout=30) == "ok"
    assert ran == [1]
    assert r.xlen(app.keys.queue(0, "nobody-serves")) == 1
    assert not any(e["event"] == "lost_message_resent" for e in logs)


def test_the_sweep_sends_no_copy_of_a_lone_task_that_ends_as_it_looks(
    app: App, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep read the log while the task ran; the task ended (its message deleted)
    before the sweep looked for the message: no copy, which a worker would run again
    (a lone task's body runs before anything is read)."""
    from streamflow.runtime.sweep import StuckSweep

    ran: list[int] = []

    @app.actor(queue="later")
    def quick() -> str:
        ran.append(1)
        return "ok"

    handle = quick.send()
    look = StuckSweep._still_there

    def ending_first(self: StuckSweep, *args: Any) -> bool:
        with app.worker(queues=["later"]):
            assert handle.result(timeout=10) == "ok"
        return look(self, *args)

    monkeypatch.setattr(StuckSweep, "_still_there", ending_first)
    sweep = StuckSweep(app.store, app.projector, stuck_after_ms=0)
    assert sweep._resend_lost(handle.id) == 0
    assert r.xlen(app.keys.queue(shard_of(handle.id), "later")) == 0
    assert ran == [1]


def test_the_sweep_finds_a_message_behind_more_than_a_page_of_others(
    app: App, r: redis.Redis
) -> None:
    """More messages than one read returns were queued between a lone task's enqueue and
    its message (a burst in one millisecond, or, as here, a stream whose ids run ahead
    of the clock): the sweep reads on until it finds the message, and sends no copy."""
    from streamflow.runtime import sweep as sweeping
    from streamflow.store.keys import new_workflow_id

    @app.actor(queue="later")
    def quick() -> str:
        return "ok"

    workflow_id = new_workflow_id(app.shards - 1)
    queue = app.keys.queue(shard_of(workflow_id), "later")
    ahead_ms = int(time.time() * 1000) + 600_000  # ten minutes ahead of any clock here
    pipe = r.pipeline(transaction=False)
    for n in range(sweeping.LOOK_PAGE + 500):  # ids ahead: the message is queued after them
        pipe.xadd(queue, {"m": b"other"}, id=f"{ahead_ms}-{n}")
    pipe.execute()
    handle = app.submit(quick.message(), workflow_id=workflow_id)
    sweep = sweeping.StuckSweep(app.store, app.projector, stuck_after_ms=0)
    assert sweep._resend_lost(handle.id) == 0
    assert r.xlen(queue) == sweeping.LOOK_PAGE + 501
