"""Delayed tasks, retries and recovery wake-ups: due members move into their streams."""

from __future__ import annotations

from collections.abc import Iterable

import redis

from streamflow.keys import Keys
from streamflow.scripts import Scripts

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
