"""A workflow's status read from its index (not its whole log), and the bounded cache of
definitions."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from streamflow import App, Chain, Group
from streamflow.api.handles import WorkflowHandle
from streamflow.model.state import task_counts
from streamflow.store.definitions import Definitions
from tests.helpers import hold
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def test_status_of_a_running_workflow_reads_its_index_not_its_log(
    app: App, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    @app.actor
    def quick(*piped: Any) -> int:
        return 1

    @app.actor
    def gated(*piped: Any) -> int:
        hold(r, "gate", 30)
        return 2

    canvas = Chain(Group(quick.message(), gated.message(), quick.message()), quick.message())
    with app.worker(concurrency=4):
        handle = app.submit(canvas)
        wait_until(lambda: handle.status().counts["succeeded"] == 2, 10)
        snap = handle.snapshot()
        with monkeypatch.context() as patched:

            def no_log_reads(self: WorkflowHandle) -> Any:
                raise AssertionError("status() read the whole log")

            patched.setattr(WorkflowHandle, "history", no_log_reads)
            status = handle.status()
        assert status.status == "running" and not status.archived
        assert status.counts == task_counts(snap.definition, snap.state)
        assert status.counts == {
            "waiting": 1,
            "queued": 0,
            "running": 1,
            "succeeded": 2,
            "failed": 0,
        }
        assert status.events == snap.state.n
        r.lpush("gate", 1)
        assert handle.result(timeout=30) == 1
    done = handle.status()
    assert done.status == "completed" and done.counts["succeeded"] == 4


def test_status_of_a_failed_workflow_before_and_after_its_archive(app: App) -> None:
    @app.actor
    def broken() -> None:
        raise KeyError("missing")

    with app.worker():
        handle = broken.send()
        wait_until(lambda: handle.status().done, 10)
        status = handle.status()
    assert status.status == "failed" and status.counts["failed"] == 1
    assert status.error is not None and status.error["type"] == "KeyError"


def test_the_definitions_cache_keeps_the_most_recently_used(app: App, r: redis.Redis) -> None:
    @app.actor
    def f(*piped: Any) -> None:
        pass

    class CountingReads:
        def __init__(self) -> None:
            self.reads = 0

        def get(self, key: str) -> Any:
            self.reads += 1
            return r.get(key)

    client = CountingReads()
    cache = Definitions(client, app.keys, cache_size=2)  # type: ignore[arg-type]
    shapes = [f.message(), Chain(f.message(), f.message()), Group(f.message(), f.message())]
    handles = [app.submit(canvas) for canvas in shapes]
    hashes = [(handle.snapshot().definition.hash, handle.id) for handle in handles]
    for def_hash, workflow_id in hashes:
        cache.get(def_hash, workflow_id)
    assert (len(cache), client.reads) == (2, 3)
    cache.get(*hashes[2])
    cache.get(*hashes[1])
    assert client.reads == 3  # both kept
    cache.get(*hashes[0])  # evicted: read again, and the least recently used (2) goes
    assert (len(cache), client.reads) == (2, 4)
    cache.get(*hashes[1])
    cache.get(*hashes[2])
    assert client.reads == 5
    with pytest.raises(ValueError, match="cache_size must be at least 1"):
        Definitions(app.client, app.keys, cache_size=0)
