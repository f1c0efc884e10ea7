"""The worker's task threads: every call's end is reported, errors included."""

from __future__ import annotations

import threading

import pytest

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
