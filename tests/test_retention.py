"""Result lifetime: finished workflows are removed after their retention, by a sweep, and
nothing outlives what it serves: their tombstones and definitions go too."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from streamflow import App, Chain, Group, ResultFailure, ResultMissing
from streamflow.api.compile import compile_canvas
from streamflow.model.events import TaskSucceeded
from streamflow.model.messages import shard_of
from streamflow.model.schema import expiry_member
from streamflow.runtime.timer import sweep_expired
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

RETENTION_S = 1.0


@pytest.fixture
def app(r: redis.Redis, redis_url: str) -> Iterator[App]:
    application = App(redis_url, retention=RETENTION_S)
    yield application
    application.close()


def test_sweep_removes_only_finished_workflows(app: App, r: redis.Redis) -> None:
    @app.actor
    def quick() -> int:
        return 1

    @app.actor(queue="later")
    def never_run() -> int:
        return 2

    with app.worker(queues=["default"]):
        done = quick.send()
        assert done.get_result(block=True, timeout=10) == 1
        running = never_run.send()  # nobody reads "later": stays running
        tombstone = app.keys.tombstone(done.id)
        wait_until(lambda: r.exists(tombstone), 10, message="sweep")
        # Read while the tombstone lasts: no longer than the workflow's retention.
        assert 0 < r.pttl(tombstone) <= RETENTION_S * 1000
        with pytest.raises(ResultMissing, match="expired") as info:
            done.get_result()
        assert info.value.reason == "expired"
        # A retried submit of an expired id is refused, never recreated.
        app.submit(quick.message(), workflow_id=done.id)
        assert not r.exists(app.keys.log(done.id))
    assert not r.exists(app.keys.archive(done.id))
    assert running.status().status == "running"
    assert r.exists(app.keys.log(running.id))


def test_retention_per_workflow_and_per_actor(app: App, r: redis.Redis) -> None:
    @app.actor(result_ttl=3600)
    def kept() -> int:
        return 1

    @app.actor
    def plain() -> int:
        return 2

    with app.worker():
        by_actor = kept.send()
        by_workflow = app.submit(plain.message(), retention=3600)
        by_app = plain.send()
        for handle in (by_actor, by_workflow, by_app):
            handle.get_result(block=True, timeout=10)
        wait_until(lambda: r.exists(app.keys.tombstone(by_app.id)), 10, message="sweep")
    assert sweep_expired(app.store, [0]) == 0
    assert by_actor.get_result() == 1
    assert by_workflow.get_result() == 2
    member = expiry_member(by_actor.id, by_actor.snapshot().definition.hash, 3_600_000)
    expiry: Any = r.zscore(app.keys.expiry(0), member)
    assert expiry > r.time()[0] * 1000 + 3_000_000


def test_unknown_id_is_unknown_not_expired(app: App) -> None:
    with pytest.raises(ResultMissing, match="unknown"):
        app.handle("0-00ff").get_result()


def test_large_results_are_stored_out_of_line(redis_url: str, r: redis.Redis) -> None:
    app = App(redis_url, large_result_bytes=1000, max_result_bytes=100_000)

    @app.actor
    def big(n: int) -> str:
        return os.urandom(n // 2).hex()  # incompressible enough to stay large

    @app.actor
    def length(text: str) -> int:
        return len(text)

    with app.worker():
        handle = app.submit(Chain(big.message(5000), length.message()))
        assert handle.get_result(block=True, timeout=10) == 5000
        alone = big.send(3000)
        assert len(alone.get_result(block=True, timeout=10)) == 3000
        too_big = big.send(400_000)
        with pytest.raises(ResultFailure, match="ResultTooLarge") as info:
            too_big.get_result(block=True, timeout=10)
    assert "over the limit of 100000" in info.value.error["message"]
    (stored,) = [e.event for e in handle.history() if isinstance(e.event, TaskSucceeded)][:1]
    assert stored.result is None and stored.result_ref == "0:1"
    assert r.hexists(app.keys.results(handle.id), "0:1")
    # The log entry stays small; the bytes are in the workflow's results hash.
    assert r.strlen(app.keys.archive(handle.id)) < 1000
    app.close()


# -- nothing outlives what it serves ---------------------------------------------------

WORKFLOWS = 1000


def _used_memory(r: redis.Redis) -> int:
    info: Any = r.info("memory")
    return int(info["used_memory"])


def _workflow_keys(r: redis.Redis, app: App) -> int:
    """Keys in Redis but the workers' stats (a hash per minute, expiring after two hours:
    a run across a minute's turn makes one more)."""
    stats = f"{app.keys.prefix}:stats:"
    return sum(1 for key in r.scan_iter(count=1000) if not key.decode().startswith(stats))


def _settled(r: redis.Redis, app: App) -> bool:
    """Every workflow ended and removed, and every tombstone gone."""
    for shard in range(app.shards):
        if r.scard(app.keys.active(shard)) or r.hlen(app.keys.ended(shard)):
            return False
        if r.zcard(app.keys.expiry(shard)):
            return False
    return not any(r.scan_iter(match=f"{app.keys.prefix}:*:expired", count=1000))


@pytest.mark.once
def test_finished_workflows_leave_nothing_behind(app: App, r: redis.Redis) -> None:
    ran: list[int] = []  # one item per body run (append is atomic)

    @app.actor
    def add(*numbers: int) -> int:
        ran.append(1)
        return sum(numbers)

    def canvas(i: int) -> Any:
        # Shapes repeat (shared definitions) and some are one of a kind (i // 10 sizes).
        if i % 3 == 0:
            return add.message(i)
        if i % 3 == 1:
            return Chain(add.message(i), add.message(1))
        return Group(*(add.message(j) for j in range(2 + i // 10 % 30)))

    with app.worker(concurrency=8, sweep_interval_s=0.2):
        # The baseline: queues, groups and beats exist, a workflow came and went on each
        # shard.
        warm = [app.submit(canvas(i)) for i in range(max(3, app.shards))]
        for handle in warm:
            handle.get_result(block=True, timeout=30)
        del ran[:]
        wait_until(lambda: _settled(r, app), 30, message="the warm-up to expire")
        keys_before, memory_before = _workflow_keys(r, app), _used_memory(r)

        handles = [app.submit(canvas(i)) for i in range(WORKFLOWS)]
        peak = r.dbsize()
        definitions = {
            app.keys.definition(shard_of(h.id), compile_canvas(canvas(i)).definition.hash)
            for i, h in enumerate(handles)
        }
        assert len(definitions) > 30  # shared and one-of-a-kind shapes
        tasks = sum(compile_canvas(canvas(i)).definition.task_count for i in range(WORKFLOWS))
        wait_until(lambda: len(ran) >= tasks, 120, message="every task to run")
        wait_until(lambda: _settled(r, app), 60, message="every workflow and tombstone to go")
        keys_after, memory_after = _workflow_keys(r, app), _used_memory(r)

    assert not any(r.exists(key) for key in definitions)
    for shard in range(app.shards):
        counts: Any = r.hgetall(app.keys.definitions(shard))
        assert set(counts) <= {b"_"}, counts  # no count left for a removed workflow
    assert peak > keys_before + 100  # kept for their retention meanwhile
    assert keys_after <= keys_before, sorted(k.decode() for k in r.scan_iter(count=1000))
    # Allocator slack only: well under what 1,000 kept workflows hold.
    assert memory_after - memory_before < 256 * 1024, (memory_before, memory_after)
