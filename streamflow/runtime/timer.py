"""Delayed tasks, retries and recovery wake-ups: due members move into their streams."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from streamflow.store.keys import Keys
from streamflow.store.scripts import Scripts

MOVE_CHUNK = 1000


def move_due(
    client: redis.Redis, scripts: Scripts, keys: Keys, shards: Iterable[int], queues: Iterable[str]
) -> int:
    """Move every due member of the shards' delayed sets and wake-up sets, in one round trip.

    Returns how many moved (a full chunk means more may be due: call again).
    """
    calls = []
    for shard in shards:
        for queue in queues:
            calls.append(
                (
                    "timer_move",
                    [keys.delayed(shard, queue), keys.queue(shard, queue)],
                    [MOVE_CHUNK],
                )
            )
        calls.append(("timer_move", [keys.wake_due(shard), keys.wake(shard)], [MOVE_CHUNK]))
    moved = 0
    for result in scripts.batch(client, calls):
        if isinstance(result, Exception):
            raise result
        moved += int(result[0])
    return moved


TOMBSTONE_TTL_MS = 7 * 24 * 3600 * 1000
"""How long a removed workflow's id still reads as "expired" (then "unknown")."""
SWEEP_CHUNK = 100


def sweep_expired(client: redis.Redis, scripts: Scripts, keys: Keys, shards: Iterable[int]) -> int:
    """Remove finished workflows whose retention has passed (never a running one).

    Returns how many were removed (a full chunk means more may be due).
    """
    calls = []
    for shard in shards:
        now_ms = _redis_now_ms(client)
        due: Any = client.zrange(
            keys.expiry(shard), "-inf", now_ms, byscore=True, offset=0, num=SWEEP_CHUNK
        )
        for raw in due:
            wf = raw.decode()
            calls.append(
                (
                    "expire",
                    [
                        keys.archive(wf),
                        keys.results(wf),
                        keys.tombstone(wf),
                        keys.expiry(shard),
                        keys.log(wf),
                        keys.ended(shard),
                    ],
                    [wf, TOMBSTONE_TTL_MS],
                )
            )
    removed = 0
    for result in scripts.batch(client, calls):
        if isinstance(result, Exception):
            raise result
        removed += result[0] == b"OK"
    return removed


def _redis_now_ms(client: redis.Redis) -> int:
    """The Redis clock (one clock for the whole system)."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000
