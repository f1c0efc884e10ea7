"""
Time limits, retries, cancellation and dead letters, with a worker in the test's
process: the retry policy (backoff, ``retry_when``, ``throws``), a lost message resent
by the sweep, a Redis that evicts refused, and the CLI's cancel and dead-letters.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, Chain, Group, ResultFailure, StreamflowError, current_task
from streamflow.model.events import (
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    WorkflowCancelled,
)
from tests.waiting import wait_until


def test_time_limits_sync_and_async(app: App) -> None:
    @app.actor(time_limit=0.2, max_retries=1, min_backoff=0.01)
    def spins() -> None:
        while True:
            pass

    @app.actor(time_limit=0.2)
    async def sleeps() -> None:
        await asyncio.Event().wait()  # until cancelled

    with app.worker(concurrency=2):
        sync_handle = spins.send()
        async_handle = sleeps.send()
        with pytest.raises(ResultFailure, match="TimeLimitExceeded") as sync_info:
            sync_handle.get_result(block=True, timeout=30)
        with pytest.raises(ResultFailure, match="TimeLimitExceeded"):
            async_handle.get_result(block=True, timeout=30)
    assert "longer than 200 ms" in sync_info.value.error["message"]
    attempts = [e.event.attempt for e in sync_handle.history() if isinstance(e.event, TaskFailed)]
    assert attempts == [1, 2]  # the retry policy applies


def test_cancel_a_running_group(app: App, r: redis.Redis) -> None:
    @app.actor
    def patient(i: int) -> str:
        context = current_task()
        assert context is not None
        while not context.cancelled:
            r.blpop(["never-pushed"], timeout=0.05)
        r.incr("saw-cancel")
        return "stopped early"

    @app.actor
    async def patient_async(i: int) -> None:
        try:
            await asyncio.Event().wait()  # until cancelled
        except asyncio.CancelledError:
            r.incr("saw-cancel")
            raise

    @app.actor
    def after(*piped: Any) -> None:
        raise AssertionError("must never run")

    canvas = Chain(
        Group(patient.message(1), patient.message(2), patient_async.message(3)), after.message()
    )
    with app.worker(concurrency=4):
        handle = app.submit(canvas)
        wait_until(lambda: sum(isinstance(e.event, TaskStarted) for e in handle.history()) == 3, 10)
        assert handle.cancel(reason="changed my mind")
        assert not handle.cancel(reason="again")
        wait_until(lambda: int(r.get("saw-cancel") or 0) == 3, 10, message="tasks see it")
        with pytest.raises(ResultFailure, match="changed my mind"):
            handle.get_result(block=True, timeout=10)
    status = handle.status()
    assert (status.status, status.reason) == ("cancelled", "changed my mind")
    history = handle.history()
    assert sum(isinstance(e.event, WorkflowCancelled) for e in history) == 1
    assert {e.event.node for e in history if isinstance(e.event, TaskEnqueued)} == {0, 1, 2}


def test_worker_refuses_a_redis_that_evicts(r: redis.Redis, app: App) -> None:
    @app.actor
    def f() -> None:
        pass

    r.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(StreamflowError, match="needs 'noeviction'"):
            app.worker().run()
    finally:
        r.config_set("maxmemory-policy", "noeviction")


def test_dead_letters_list_show_requeue_purge(app: App, r: redis.Redis) -> None:
    @app.actor
    def f() -> int:
        return 7

    queue = app.keys.queue(0, "default")
    with app.worker():
        r.xadd(queue, {"m": b"\x00garbage"})
        wait_until(lambda: r.xlen("sf:dead") == 1, 10, message="dead letter")
    (letter,) = app.dead_letters.list()
    assert letter.data == b"\x00garbage"
    assert "undecodable" in letter.reason
    assert letter.queue == queue
    assert letter.first_seen_ms <= letter.last_seen_ms
    assert app.dead_letters.get(letter.id) == letter
    new_id = app.dead_letters.requeue(letter.id)
    assert r.xrange(queue)[0][0].decode() == new_id
    assert app.dead_letters.list() == []
    r.xadd("sf:dead", {"reason": "x", "queue": queue, "msg_id": "1-0", "data": b""})
    assert app.dead_letters.purge() == 1
    with pytest.raises(KeyError, match="no dead letter"):
        app.dead_letters.get("1-0")


def test_cli_cancel_and_dead_letters(app: App, r: redis.Redis, redis_url: str) -> None:
    @app.actor
    def waits() -> None:
        pass

    handle = waits.send()  # no worker: stays queued
    run = [sys.executable, "-m", "streamflow.cli", "--log-level", "warning"]
    done = subprocess.run(
        [*run, "cancel", handle.id, "--url", redis_url, "--reason", "from the CLI"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"cancelled {handle.id}" in done.stdout
    assert handle.status().reason == "from the CLI"
    again = subprocess.run([*run, "cancel", handle.id, "--url", redis_url], capture_output=True)
    assert again.returncode == 1
    r.xadd("sf:dead", {"reason": "bad bytes", "queue": "q", "msg_id": "5-0", "data": b"\x01"})
    listed = subprocess.run(
        [*run, "dead-letters", "list", "--url", redis_url], capture_output=True, text=True
    )
    assert "bad bytes" in listed.stdout


def test_retries_backoff_retry_when_and_throws(app: App, r: redis.Redis) -> None:
    @app.actor(max_retries=3, min_backoff=0.1, max_backoff=0.15)
    def flaky() -> str:
        if r.incr("flaky") < 4:
            raise ValueError("not yet")
        return "ok"

    @app.actor(max_retries=5, throws=(KeyError,))
    def hopeless() -> None:
        raise KeyError("never retried")

    @app.actor(
        min_backoff=0.01,
        max_backoff=0.05,
        retry_when=lambda retries, exc: isinstance(exc, OSError) and retries < 6,
    )
    def picky() -> str:
        if r.incr("picky") < 7:
            raise OSError("transient")
        return "finally"

    with app.worker(concurrency=3):
        flaky_handle = flaky.send()
        hopeless_handle = hopeless.send()
        picky_handle = app.submit(picky.message_with_options(), retention=60)
        assert flaky_handle.get_result(block=True, timeout=30) == "ok"
        with pytest.raises(ResultFailure, match="KeyError"):
            hopeless_handle.get_result(block=True, timeout=30)
        assert picky_handle.get_result(block=True, timeout=60) == "finally"
    history = flaky_handle.history()
    failures = {e.event.attempt: e for e in history if isinstance(e.event, TaskFailed)}
    enqueues = {e.event.attempt: e for e in history if isinstance(e.event, TaskEnqueued)}
    assert sorted(enqueues) == [1, 2, 3, 4]
    for attempt, failed in failures.items():
        # Exponential with jitter: min_backoff * 2^(n-1), capped, times [0.5, 1].
        bound = min(150, 100 * 2 ** (attempt - 1))
        assert bound / 2 <= failed.event.retry_delay_ms <= bound
        due = failed.time_ms + failed.event.retry_delay_ms
        started = next(
            e
            for e in history
            if isinstance(e.event, TaskStarted) and e.event.attempt == attempt + 1
        )
        assert started.time_ms >= due  # the retry went through the timer, not early
    hopeless_attempts = [
        e.event.attempt for e in hopeless_handle.history() if isinstance(e.event, TaskEnqueued)
    ]
    assert hopeless_attempts == [1]
    assert int(r.get("picky") or 0) == 7  # beyond max_retries (0): retry_when decided


def test_sweep_resends_a_lost_message(app: App, r: redis.Redis) -> None:
    @app.actor
    def step(*piped: Any) -> str:
        return "done"

    handle = app.submit(Chain(step.message(), step.message()))
    queue = app.keys.queue(0, "default")
    ((msg_id, _),) = r.xrange(queue)
    r.xdel(queue, msg_id)  # the message is lost (e.g. a failover dropped it)
    with capture_logs() as logs, app.worker(stuck_after_s=0.3, sweep_interval_s=0.1):
        assert handle.get_result(block=True, timeout=30) == "done"
    assert any(log["event"] == "lost_message_resent" for log in logs)
    starts = [e for e in handle.history() if isinstance(e.event, TaskStarted)]
    assert len(starts) == 2
