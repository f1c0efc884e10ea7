"""The timer: delayed tasks, retries and recovery wake-ups move into their streams when
due; parked messages go back to their queues once resumed; finished workflows past their
retention are removed; stuck ones are swept."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from streamflow.logs import get_logger
from streamflow.model.schema import NO_DEFINITION, parse_expiry_member
from streamflow.runtime.outage import Outage
from streamflow.runtime.pausing import unpark
from streamflow.runtime.roles import Role
from streamflow.runtime.sweep import StuckSweep
from streamflow.store import pauses, scripts
from streamflow.store.cluster import Routes
from streamflow.store.connection import Store
from streamflow.store.plan import Command, checked
from streamflow.store.wire import Wire

log = get_logger(__name__)

MOVE_CHUNK = 1000
TOMBSTONE_TTL_MS = 7 * 24 * 3600 * 1000
"""How long a removed workflow's id still reads as "expired" (then "unknown") at most:
its retention, up to this."""
SWEEP_CHUNK = 100
TICK_S = 0.05
CLOCK_SLACK_MS = 100
"""A set whose first member is due within this of the clock the look read is moved by
its script (a cluster's masters' clocks may differ a little; the script decides)."""


def move_due(
    store: Store,
    shards: Iterable[int],
    queues: Iterable[str],
    execute: Callable[[Sequence[Command]], list[Any]] | None = None,
) -> int:
    """Move every due member of the shards' delayed sets and wake-up sets.

    One round trip looks at the first member of every set (a cluster's masters one
    pipeline each) and at the Redis clock; the move script runs only on the sets whose
    first member is due by then, all in one more round trip. The script decides by its
    own master's clock (the look only saves calls: on a quiet cluster of 48 shards, 96
    script calls a tick). ``execute`` sends the look (default: the store's reads).

    Returns how many moved (a full chunk means more may be due: call again).
    """
    keys = store.keys
    sets = [
        (keys.delayed(shard, queue), keys.queue(shard, queue))
        for shard in shards
        for queue in queues
    ]
    sets += [(keys.wake_due(shard), keys.wake(shard)) for shard in shards]
    look: list[Command] = [("TIME",)]
    look += [("ZRANGE", delayed, 0, 0, "WITHSCORES") for delayed, _ in sets]
    clock, *firsts = (execute or store.execute)(look)
    now_ms = int(checked(clock)[0]) * 1000 + int(clock[1]) // 1000
    calls = [
        scripts.timer_move(delayed=delayed, stream=stream, limit=MOVE_CHUNK)
        for (delayed, stream), first in zip(sets, firsts, strict=True)
        if (due := first_score(checked(first))) is not None and due <= now_ms + CLOCK_SLACK_MS
    ]
    if not calls:
        return 0
    moved = 0
    for result in store.scripts.batch(calls):
        if isinstance(result, Exception):
            raise result
        moved += int(result[0])
    return moved


def first_score(reply: Any) -> float | None:
    """The score of a ``ZRANGE ... 0 0 WITHSCORES`` reply's member (RESP2 answers
    ``[member, score]``, RESP3 ``[[member, score]]``), None for an empty set."""
    if not reply:
        return None
    first = reply[0]
    return float(first[1] if isinstance(first, list) else reply[1])


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
    """Every tick, moves what is due; about every second, puts back on their queues the
    parked messages no pause holds any more; every ``sweep_interval_s``, removes expired
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
        self._last_sweep = self._last_unpark = 0.0
        self._wire: Wire | Routes | None = None

    def step(self) -> None:
        if self.stopping.wait(TICK_S):
            return
        if self._wire is None:
            self._wire = self.store.wire()
        move_due(self.store, self.shards, self.queues, self._wire.execute)
        if time.monotonic() - self._last_unpark > pauses.PAUSE_LOOK_S:
            self._last_unpark = time.monotonic()
            unpark(self.store, self.shards, self._wire.execute)
        if time.monotonic() - self._last_sweep > self.sweep_interval_s:
            self._last_sweep = time.monotonic()
            removed = sweep_expired(self.store, self.shards)
            if removed:
                self._log.info("expired_workflows_removed", count=removed)
            self.sweep.run(self.shards)

    def close(self) -> None:
        """Give the look's connection back."""
        if self._wire is not None:
            self._wire.close()
