"""The worker's task threads: every call's end is reported, errors included."""

from __future__ import annotations

import threading
import time

import pytest

from streamflow.runtime import pool as pool_module
from streamflow.runtime.pool import TaskPool


def test_every_call_runs_and_its_end_is_reported_with_its_error() -> None:
    ended: list[BaseException | None] = []
    lock = threading.Lock()
    all_ended = threading.Event()

    def record(error: BaseException | None) -> None:
        with lock:
            ended.append(error)
            if len(ended) == 20:
                all_ended.set()

    ran: list[int] = []
    pool = TaskPool(3, "test-pool", record)

    def call(i: int) -> None:
        if i % 5 == 0:
            raise ValueError(f"call {i}")
        with lock:
            ran.append(i)

    for i in range(20):
        pool.submit(call, i)
    assert all_ended.wait(10)
    pool.shutdown(wait=True)
    assert sorted(ran) == [i for i in range(20) if i % 5]
    errors = sorted(str(e) for e in ended if e is not None)
    assert errors == ["call 0", "call 10", "call 15", "call 5"]
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(call, 1)


def test_shutdown_drops_queued_calls_and_reports_each() -> None:
    ended: list[BaseException | None] = []
    release = threading.Event()
    running = threading.Event()
    ran: list[int] = []

    def blocker() -> None:
        running.set()
        release.wait(10)

    pool = TaskPool(1, "test-pool", ended.append)
    pool.submit(blocker)
    assert running.wait(10)
    for i in range(4):
        pool.submit(ran.append, i)  # queued behind the blocker
    pool.shutdown(wait=False)
    assert ended == [None] * 4  # the four dropped calls, reported at once
    release.set()
    pool.shutdown(wait=True)
    assert ran == []
    assert len(ended) == 5  # and the blocker, when it ended


def _blocked_pool() -> tuple[TaskPool, threading.Event]:
    """A one-thread pool busy with a call that waits for the event returned."""
    release, running = threading.Event(), threading.Event()

    def blocker() -> None:
        running.set()
        release.wait(10)

    pool = TaskPool(1, "test-pool", lambda error: None)
    pool.submit(blocker)
    assert running.wait(10)
    return pool, release


def test_waiting_calls_start_lowest_priority_first_then_in_arrival_order() -> None:
    order: list[str] = []
    done = threading.Event()
    pool, release = _blocked_pool()
    for name, priority in [("low", 5), ("first", 0), ("urgent", -3), ("second", 0)]:
        pool.submit(order.append, name, priority=priority)
    pool.submit(done.set, priority=100)
    release.set()
    assert done.wait(10)
    pool.shutdown(wait=True)
    assert order == ["urgent", "first", "second", "low"]


def test_a_priority_level_is_a_second_of_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "PRIORITY_STEP_S", 0.05)
    order: list[str] = []
    done = threading.Event()
    pool, release = _blocked_pool()
    pool.submit(order.append, "patient", priority=1)  # as if submitted 0.05 s later
    time.sleep(0.1)
    pool.submit(order.append, "newer")  # priority 0, but submitted after that
    pool.submit(done.set, priority=100)
    release.set()
    assert done.wait(10)
    pool.shutdown(wait=True)
    assert order == ["patient", "newer"]  # it waited long enough: no starving
