"""Nothing outlives what it serves: once finished workflows pass their retention, their
keys, tombstones and definitions go, and Redis is back where it started."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from streamflow import App, Chain, Group
from streamflow.api.compile import compile_canvas
from streamflow.model.messages import shard_of
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

RETENTION_S = 1.0
WORKFLOWS = 1000


@pytest.fixture
def app(r: redis.Redis, redis_url: str) -> Iterator[App]:
    application = App(redis_url, retention=RETENTION_S)
    yield application
    application.close()


def _used_memory(r: redis.Redis) -> int:
    info: Any = r.info("memory")
    return int(info["used_memory"])


def _settled(r: redis.Redis, app: App) -> bool:
    """Every workflow ended and removed, and every tombstone gone."""
    for shard in range(app.shards):
        if r.scard(app.keys.active(shard)) or r.hlen(app.keys.ended(shard)):
            return False
        if r.zcard(app.keys.expiry(shard)):
            return False
    return not any(r.scan_iter(match=f"{app.keys.prefix}:*:expired", count=1000))


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
        # The baseline: queues, groups and beats exist, one workflow came and went.
        warm = [app.submit(canvas(i)) for i in range(3)]
        for handle in warm:
            handle.get_result(block=True, timeout=30)
        del ran[:]
        wait_until(lambda: _settled(r, app), 30, message="the warm-up to expire")
        keys_before, memory_before = r.dbsize(), _used_memory(r)

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
        keys_after, memory_after = r.dbsize(), _used_memory(r)

    assert not any(r.exists(key) for key in definitions)
    for shard in range(app.shards):
        counts: Any = r.hgetall(app.keys.definitions(shard))
        assert set(counts) <= {b"_"}, counts  # no count left for a removed workflow
    assert peak > keys_before + 100  # kept for their retention meanwhile
    assert keys_after <= keys_before, sorted(k.decode() for k in r.scan_iter(count=1000))
    # Allocator slack only: well under what 1,000 kept workflows hold.
    assert memory_after - memory_before < 256 * 1024, (memory_before, memory_after)
