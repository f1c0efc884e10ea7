"""The timer: delayed tasks, retries and recovery wake-ups move into their streams when
due; finished workflows past their retention are removed; stuck ones are swept."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from streamflow.logs import get_logger
from streamflow.model.schema import NO_DEFINITION, parse_expiry_member
from streamflow.runtime.outage import Outage
from streamflow.runtime.roles import Role
from streamflow.runtime.sweep import StuckSweep
from streamflow.store import scripts
from streamflow.store.connection import Store

log = get_logger(__name__)

MOVE_CHUNK = 1000
TOMBSTONE_TTL_MS = 7 * 24 * 3600 * 1000
"""How long a removed workflow's id still reads as "expired" (then "unknown") at most:
its retention, up to this."""
SWEEP_CHUNK = 100
TICK_S = 0.05


def move_due(store: Store, shards: Iterable[int], queues: Iterable[str]) -> int:
    """Move every due member of the shards' delayed sets and wake-up sets, in one round trip.

    Returns how many moved (a full chunk means more may be due: call again).
    """
    keys = store.keys
    calls = []
    for shard in shards:
        for queue in queues:
            calls.append(
                scripts.timer_move(
                    delayed=keys.delayed(shard, queue),
                    stream=keys.queue(shard, queue),
                    limit=MOVE_CHUNK,
                )
            )
        calls.append(
            scripts.timer_move(
                delayed=keys.wake_due(shard), stream=keys.wake(shard), limit=MOVE_CHUNK
            )
        )
    moved = 0
    for result in store.scripts.batch(calls):
        if isinstance(result, Exception):
            raise result
        moved += int(result[0])
    return moved


def sweep_expired(store: Store, shards: Iterable[int]) -> int:
    """Remove finished workflows whose retention has passed (never a running one).

    Returns how many were removed (a full chunk means more may be due).
    """
    calls = []
    for shard in shards:
        due: Any = store.client.zrange(
            store.keys.expiry(shard),
            "-inf",
            store.now_ms(shard),
            byscore=True,
            offset=0,
            num=SWEEP_CHUNK,
        )
        for raw in due:
            try:
                calls.append(_expire(store, shard, raw.decode()))
            except ValueError:
                # Not ours to read: dropped, said once, so that it stops no other.
                log.error("expiry_member_unreadable", shard=shard, member=repr(raw)[:200])
                store.client.zrem(store.keys.expiry(shard), raw)
    removed = 0
    for result in store.scripts.batch(calls):
        if isinstance(result, Exception):
            raise result
        removed += result[0] == b"OK"
    return removed


def _expire(store: Store, shard: int, member: str) -> scripts.Call:
    workflow_id, def_hash, retention_ms = parse_expiry_member(member)
    keys = store.keys
    return scripts.expire(
        wf=keys.workflow(workflow_id),
        member=member,
        tombstone_ms=max(1, min(retention_ms, TOMBSTONE_TTL_MS)),
        definitions=keys.definitions(shard),
        definition=None if def_hash == NO_DEFINITION else keys.definition(shard, def_hash),
        def_hash=def_hash,
    )


class Timer(Role):
    """Every tick, moves what is due; every ``sweep_interval_s``, removes expired
    workflows and sweeps stuck ones."""

    def __init__(
        self,
        store: Store,
        sweep: StuckSweep,
        shards: tuple[int, ...],
        queues: tuple[str, ...],
        *,
        sweep_interval_s: float,
        stopping: threading.Event,
        outage: Outage,
        log: Any,
    ) -> None:
        super().__init__("timer", stopping, outage, log)
        self.store = store
        self.sweep = sweep
        self.shards = shards
        self.queues = queues
        self.sweep_interval_s = sweep_interval_s
        self._last_sweep = 0.0

    def step(self) -> None:
        if self.stopping.wait(TICK_S):
            return
        move_due(self.store, self.shards, self.queues)
        if time.monotonic() - self._last_sweep > self.sweep_interval_s:
            self._last_sweep = time.monotonic()
            removed = sweep_expired(self.store, self.shards)
            if removed:
                self._log.info("expired_workflows_removed", count=removed)
            self.sweep.run(self.shards)
