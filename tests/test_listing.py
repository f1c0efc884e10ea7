"""Listing workflows reads each shard's submitted index, newest first, a page at a time:
what a listing costs follows what it shows, not what Redis keeps; workflows kept from
before the index existed are indexed at the first listing."""

from __future__ import annotations

import pytest
import redis

from streamflow import App
from tests.helpers import command_calls

pytestmark = pytest.mark.integration


def test_a_listing_costs_what_it_shows(app: App, r: redis.Redis) -> None:
    @app.actor
    def idle() -> None:
        pass

    @app.actor
    def broken() -> None:
        raise RuntimeError("no")

    with app.worker():
        failed = [broken.send() for _ in range(3)]
        for handle in failed:
            handle.wait(timeout=30)
    running = app.submit_many([idle.message() for _ in range(600)])  # no worker now

    app.workflows(limit=1)  # the first listing indexes the shards' past (nothing here)
    before = command_calls(r)
    newest = app.workflows(limit=5)
    spent = command_calls(r)
    everything = app.workflows(limit=1000)
    assert len(everything) == 603
    # Newest first (the same millisecond: by id), as the full listing orders them.
    assert everything == sorted(
        everything, key=lambda s: (s.submitted_ms, s.workflow_id), reverse=True
    )
    assert newest == everything[:5]
    assert {s.workflow_id for s in newest} <= {h.id for h in running}
    # A page of ids per shard and three reads per id: not 603 workflows' worth.
    reads = sum(spent.get(c, 0) - before.get(c, 0) for c in ("hmget", "hget", "getrange"))
    assert reads <= 3 * 100 * app.shards

    # Filtered by status: paged past the 600 running ones to the 3 failed, older.
    found = app.workflows(status="failed", limit=10)
    assert sorted(s.workflow_id for s in found) == sorted(h.id for h in failed)
    assert all(s.ended_ms is not None and s.events > 0 for s in found)


def test_workflows_kept_from_before_the_index_are_listed(app: App, r: redis.Redis) -> None:
    @app.actor
    def step() -> int:
        return 1

    with app.worker():
        done = [step.send() for _ in range(4)]
        for handle in done:
            assert handle.result(timeout=30) == 1
    waiting = [app.submit(step.message()) for _ in range(2)]
    listed = {s.workflow_id: s.status for s in app.workflows(limit=10)}
    # As an older version left them: no submitted index, not marked indexed.
    for shard in range(app.shards):
        r.delete(app.keys.submitted(shard), app.keys.submitted_indexed(shard))
    again = {s.workflow_id: s.status for s in app.workflows(limit=10)}
    assert again == listed
    assert sorted(again) == sorted(h.id for h in [*done, *waiting])
    assert sum(r.zcard(app.keys.submitted(s)) for s in range(app.shards)) == 6
