"""The engine while the cluster moves under it: slots moved to another master in the
middle of a run (every client meets MOVED, ASK and TRYAGAIN), on a cluster of its own.
Every workflow finishes with the right result and a clean audit: sending a script again
after a redirection is safe because every script is idempotent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, Chain, Group, audit
from streamflow.store.keys import shard_tag, slot_of
from tests.cluster import HOST, LocalCluster, move_slot, owner_of
from tests.test_engine import seed_dag
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster_faults


def redirections(ports: list[int]) -> dict[str, int]:
    """Error replies of each kind the masters sent (INFO errorstats), summed."""
    counts: dict[str, int] = {}
    for port in ports:
        for name, stat in redis.Redis(HOST, port).info("errorstats").items():
            kind = name.removeprefix("errorstat_")
            counts[kind] = counts.get(kind, 0) + int(stat["count"])
    return counts


@pytest.fixture
def own_cluster(redis_binary: str) -> Iterator[LocalCluster]:
    with LocalCluster(redis_binary, masters=3) as cluster:
        yield cluster


def test_workflows_finish_while_their_slots_move_to_another_master(
    own_cluster: LocalCluster,
) -> None:
    app = App(own_cluster.url)

    @app.actor
    def step(x: int, *piped: Any) -> int:
        time.sleep(0.002)
        return x + sum(p for p in piped if isinstance(p, int))

    @app.actor
    def total(parts: list[int]) -> int:
        return sum(parts)

    canvas = Chain(
        step.message(1), Group(step.message(2), step.message(3)), total.message(), step.message(0)
    )
    ports = own_cluster.ports
    # The slots of the first 6 shards: each moves to the next master while they run.
    slots = [slot_of(shard_tag(shard)) for shard in range(6)]
    moved: list[int] = []
    try:
        with capture_logs() as logs, app.worker(concurrency=8):
            handles = app.submit_many([canvas] * 240)

            def reshard() -> None:
                for slot in slots:
                    owner = owner_of(ports, slot)
                    target = ports[(ports.index(owner) + 1) % len(ports)]
                    moved.append(move_slot(ports, slot, target, pause_s=0.01))

            mover = threading.Thread(target=reshard)
            mover.start()
            more = app.submit_many([canvas] * 240)  # submitted while slots move
            mover.join(60)
            values = app.results(handles + more, timeout=120)
        assert values == [7] * 480  # 1, then 2 + 1 and 3 + 1, summed, then + 0
        assert len(moved) == len(slots) and sum(moved) > 0
        # The clients did meet the moves, and followed them without reporting a failure.
        redirected = redirections(ports)
        assert redirected.get("ASK", 0) + redirected.get("TRYAGAIN", 0) > 0, redirected
        assert redirected.get("MOVED", 0) > 0, redirected
        assert [log for log in logs if log["log_level"] in ("error", "critical")] == []
        for handle in (handles + more)[::20]:
            history = handle.history()
            definition = app.definitions.get(history[0].event.def_hash, handle.id)  # type: ignore[attr-defined]
            assert audit(history, definition) == []
    finally:
        app.close()


@pytest.fixture
def replicated_cluster(redis_binary: str) -> Iterator[LocalCluster]:
    with LocalCluster(redis_binary, masters=3, replicas=1) as cluster:
        yield cluster


def test_workflows_finish_across_a_master_failover(replicated_cluster: LocalCluster) -> None:
    cluster = replicated_cluster
    app = App(cluster.url, durability="replicated", replicas=1, durability_timeout=2.0)
    canvas = seed_dag(app)
    victim = owner_of(cluster.ports, slot_of(shard_tag(0)))
    try:
        with app.worker(concurrency=8, lease_ms=3000):
            handles = app.submit_many([canvas] * 200)
            wait_until(lambda: handles[-1].status().counts["succeeded"] > 0, 30)
            cluster.kill(victim)  # its replica takes over after the node timeout (2 s)
            wait_until(
                lambda: owner_of(alive(cluster, victim), slot_of(shard_tag(0))) != victim, 30
            )
            cluster.restart(victim)  # back as the new master's replica
            values = app.results(handles, timeout=180)
        assert values == [[10, 10, [24, 28]]] * 200
        for handle in handles:
            history = handle.history()
            definition = app.definitions.get(history[0].event.def_hash, handle.id)  # type: ignore[attr-defined]
            assert audit(history, definition) == []
    finally:
        app.close()


def alive(cluster: LocalCluster, dead: int) -> list[int]:
    """The ports of ``cluster`` but ``dead``."""
    return [port for port in cluster.ports if port != dead]
