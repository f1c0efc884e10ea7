"""The engine on the suite's local Redis Cluster (3 masters): the same user code as on
one Redis, given a ``redis+cluster://`` URL. Submit, chains and groups passing results,
delays and retries, cancel, dead letters, history and audit, and following a log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from streamflow import App, Chain, DurabilityError, Group, ResultFailure, WithDelay, audit, replay
from streamflow.model.events import TaskFailed, TaskStarted, WorkflowCompleted
from streamflow.store.cluster import connect
from streamflow.store.group_reads import group_reads
from tests.cluster import LocalCluster
from tests.helpers import master_of
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(redis_cluster: LocalCluster) -> Iterator[RedisCluster]:
    """A client of the session's cluster, every master flushed before the test."""
    client: Any = connect(redis_cluster.url)
    client.flushall()  # every master
    yield client
    client.close()


@pytest.fixture
def capp(cluster: RedisCluster, redis_cluster: LocalCluster) -> Iterator[App]:
    application = App(redis_cluster.url)
    yield application
    application.close()


def _add(app: App) -> Any:
    @app.actor
    def add(a: int, b: int = 0) -> int:
        return a + b

    return add


def test_an_app_on_a_cluster_spreads_its_shards_over_every_master(capp: App, cluster: Any) -> None:
    add = _add(capp)

    assert capp.shards == 48  # 16 per master
    with capp.worker(concurrency=4):
        handles = [capp.submit(add.message(i, 1)) for i in range(96)]
        assert capp.results(handles, timeout=30) == [i + 1 for i in range(96)]
    assert int(cluster.get("sf:shards")) == 48
    # Every master holds some of the finished workflows.
    sizes = [cluster.get_redis_connection(node).dbsize() for node in cluster.get_primaries()]
    assert len(sizes) == 3 and all(size > 10 for size in sizes), sizes


def test_chains_and_groups_pass_results_across_every_shard(capp: App) -> None:
    add = _add(capp)

    @capp.actor
    def total(parts: list[int]) -> int:
        return sum(parts)

    canvas = Chain(add.message(1, 1), Group(add.message(10), add.message(20)), total.message())
    with capp.worker(concurrency=8):
        handles = capp.submit_many([canvas] * 60)
        assert capp.results(handles, timeout=60) == [34] * 60
    for handle in handles[:5]:
        history = handle.history()
        definition = capp.definitions.get(history[0].event.def_hash, handle.id)  # type: ignore[attr-defined]
        assert audit(history, definition) == []
        assert replay(history, definition) == []
        assert isinstance(history[-1].event, WorkflowCompleted)


def test_delays_and_retries_run_on_a_cluster(capp: App, cluster: Any) -> None:
    @capp.actor(max_retries=2, min_backoff=0.05)
    def flaky(key: str) -> str:
        if cluster.incr(key) < 2:
            raise RuntimeError("first try fails")
        return key

    @capp.actor
    def later() -> str:
        return "later"

    with capp.worker(concurrency=4):
        retried = [capp.submit(flaky.message(f"{{k}}{i}")) for i in range(12)]
        delayed = capp.submit(WithDelay(later.message(), 0.2))
        assert capp.results(retried, timeout=30) == [f"{{k}}{i}" for i in range(12)]
        assert delayed.get_result(block=True, timeout=30) == "later"
    failed = [e for e in retried[0].history() if isinstance(e.event, TaskFailed)]
    assert len(failed) == 1


def test_cancel_and_a_failure_on_a_cluster(capp: App) -> None:
    @capp.actor
    def waits() -> None:
        pass

    @capp.actor
    def broken() -> None:
        raise ValueError("no")

    queued = [waits.send() for _ in range(6)]  # no worker yet: they stay queued
    assert all(handle.cancel(reason="not needed") for handle in queued)
    with capp.worker(concurrency=2):
        failing = capp.submit(broken.message())
        with pytest.raises(ResultFailure, match="no"):
            failing.get_result(block=True, timeout=20)
    assert {handle.status().status for handle in queued} == {"cancelled"}


def test_an_undecodable_message_goes_to_the_dead_letters(capp: App, cluster: Any) -> None:
    add = _add(capp)
    queue = capp.keys.queue(5, "default")
    with capp.worker(concurrency=2):
        cluster.xadd(queue, {"m": b"\xffnot a message"})
        wait_until(lambda: len(capp.dead_letters.list()) == 1, 20, message="dead letter")
        assert capp.submit(add.message(2, 2)).get_result(block=True, timeout=20) == 4
    (letter,) = capp.dead_letters.list()
    assert (letter.queue, letter.data) == (queue, b"\xffnot a message")
    requeued = capp.dead_letters.requeue(letter.id)
    assert cluster.xrange(queue, requeued, requeued)


def test_events_of_a_running_workflow_are_followed_on_its_master(capp: App) -> None:
    add = _add(capp)
    handle = capp.submit(Chain(add.message(1), add.message(2), add.message(3)))
    with capp.worker(concurrency=2):
        events = [entry.event for entry in handle.events()]
    assert sum(isinstance(event, TaskStarted) for event in events) == 3
    assert isinstance(events[-1], WorkflowCompleted)


def test_the_asyncio_client_on_a_cluster(capp: App) -> None:
    add = _add(capp)

    worker = capp.worker(concurrency=4).start()

    async def main() -> list[Any]:
        handles = [await capp.submit_async(add.message(i, i)) for i in range(10)]
        values = await capp.results_async(handles, timeout=30)
        worker.stop()  # before the App closes under it
        await capp.aclose()
        return values

    assert asyncio.run(main()) == [2 * i for i in range(10)]


def test_another_shard_count_is_refused_on_a_cluster(
    capp: App, redis_cluster: LocalCluster
) -> None:
    add = _add(capp)
    capp.submit(add.message(1))  # records 48

    other = App(redis_cluster.url, shards=3)
    try:
        with pytest.raises(Exception, match="shards=48"):
            other.submit(add.message(1))
    finally:
        other.close()


def test_a_cluster_url_names_its_nodes_clearly() -> None:
    with pytest.raises(ValueError, match="host:port"):
        connect("redis+cluster://127.0.0.1:1,nonsense")
    with pytest.raises(redis.RedisError):
        connect("redis+cluster://127.0.0.1:1")  # nothing listens there: said at once


def test_an_app_waits_for_an_unreachable_cluster_then_says_so() -> None:
    with pytest.raises(redis.ConnectionError, match=r"127\.0\.0\.1:1") as info:
        App("redis+cluster://user:secret@127.0.0.1:1", retry_for=0.3)
    assert "secret" not in str(info.value)


def test_a_cluster_url_takes_options_as_a_node_url_does(redis_cluster: LocalCluster) -> None:
    client: Any = connect(redis_cluster.url + "?socket_timeout=3&socket_connect_timeout=2")
    try:
        pool = client.get_default_node().redis_connection.connection_pool
        assert pool.connection_kwargs["socket_timeout"] == 3.0
        assert pool.connection_kwargs["socket_connect_timeout"] == 2.0
        assert client.ping()
    finally:
        client.close()


def test_replicated_durability_fails_honestly_on_masters_without_replicas(
    cluster: Any, redis_cluster: LocalCluster
) -> None:
    app = App(redis_cluster.url, durability="replicated", replicas=1, durability_timeout=0.2)
    try:
        add = _add(app)
        # The suite's cluster has no replicas: no master can confirm a write.
        with pytest.raises(DurabilityError, match="0 of 1 replicas"):
            app.submit(add.message(1))
    finally:
        app.close()


def test_messages_read_beside_a_failed_read_are_handed_out_next(capp: App, cluster: Any) -> None:
    # Shard 0's queue has its group and a message; shard 1's lost its group (Redis lost
    # its data): the read of both delivers shard 0's message and fails on shard 1's.
    ready, lost = capp.keys.queue(0, "default"), capp.keys.queue(1, "default")
    cluster.xgroup_create(ready, "workers", id="0", mkstream=True)
    msg_id = cluster.xadd(ready, {"m": b"a message"}).decode()
    cluster.xadd(lost, {"m": b"no group reads me"})
    reads = group_reads(capp.store.wire(), "workers", "me", {ready: 0, lost: 1}, 100)
    try:
        with pytest.raises(redis.ResponseError, match="NOGROUP"):
            reads.read(10)
        # Delivered to this consumer by the failed read: not lost in its pending list.
        assert reads.read(10) == [(ready, msg_id, b"a message")]
    finally:
        reads.close()


def test_a_parked_read_whose_connection_was_killed_is_parked_again(capp: App, cluster: Any) -> None:
    keys = {capp.keys.queue(shard, "default"): shard for shard in (0, 1)}
    for key in keys:
        cluster.xgroup_create(key, "workers", id="0", mkstream=True)
    reads = group_reads(capp.store.wire(), "workers", "me", keys, 100)
    try:
        assert reads.read(10) == []  # nothing waiting: a blocking read parked on each
        first = capp.keys.queue(0, "default")
        master = master_of(cluster, first)
        killed = [c["id"] for c in master.client_list() if c["cmd"] == "xreadgroup"]
        assert killed  # the parked read of shard 0 (and of shard 1 if on this master)
        for client_id in killed:
            master.client_kill_filter(_id=client_id)
        msg_id = cluster.xadd(first, {"m": b"after"}).decode()
        found: list[Any] = []
        wait_until(lambda: found.extend(reads.read(10)) or found, 10)
        assert found == [(first, msg_id, b"after")]
    finally:
        reads.close()
