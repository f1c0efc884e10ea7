"""What the queues hold, for ``streamflow queues``, the dashboard and the metrics: per
queue and shard, the entries of its stream (its length), those not yet delivered to any
worker (waiting: the consumer group's lag), those delivered and not yet acknowledged (in
flight) and the age of the oldest of them, the delayed, the parked (paused) and the
dead-lettered ones."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

import redis

from streamflow.model.schema import WORKER_GROUP
from streamflow.store.connection import Store
from streamflow.store.pauses import parked_of

DEAD_SCAN = 10_000
"""Dead letters counted per queue: the newest this many (a longer stream says so)."""


@dataclasses.dataclass(frozen=True, slots=True)
class QueueStats:
    """One queue on one shard (``shard`` None: every shard, summed)."""

    queue: str
    shard: int | None
    length: int = 0
    """Entries in the queue's stream (``XLEN``): waiting and in flight (a handled message
    is deleted)."""
    waiting: int = 0
    """Messages not yet delivered to any worker: the consumer group's lag (without one
    known, the length less those in flight)."""
    in_flight: int = 0
    """Delivered to a worker and not yet acknowledged."""
    oldest_in_flight_ms: int | None = None
    """How long the oldest of those has been in its queue (None: none)."""
    delayed: int = 0
    """Waiting for their time (delays, retries' backoff)."""
    parked: int = 0
    """Set aside while their queue or actor is paused."""
    dead: int = 0
    """Dead letters that came from this queue on this shard (among the newest
    ``DEAD_SCAN``)."""

    def __add__(self, other: QueueStats) -> QueueStats:
        ages = [a for a in (self.oldest_in_flight_ms, other.oldest_in_flight_ms) if a is not None]
        return QueueStats(
            queue=self.queue,
            shard=None,
            length=self.length + other.length,
            waiting=self.waiting + other.waiting,
            in_flight=self.in_flight + other.in_flight,
            oldest_in_flight_ms=max(ages) if ages else None,
            delayed=self.delayed + other.delayed,
            parked=self.parked + other.parked,
            dead=self.dead + other.dead,
        )


_QUEUE_KEY = re.compile(r":\{(\d+)\.\d+\}:q:([^:]+)$")
"""A queue stream's key: its shard and its queue's name."""


def queue_stats(store: Store) -> list[QueueStats]:
    """Every queue with a stream or a dead letter on some shard, per shard, by queue then
    shard."""
    keys = store.keys
    found: dict[tuple[str, int], str] = {}
    for raw in store.client.scan_iter(match=f"{_escaped(keys.prefix)}:*:q:*", count=1000):
        key = raw.decode() if isinstance(raw, bytes) else raw
        if key.startswith(f"{keys.prefix}:") and (where := _queue_of(key)):
            found[where] = key
    dead = _dead(store)
    for queue, shard in dead:  # its stream may be gone: its dead letters still count
        found.setdefault((queue, shard), keys.queue(shard, queue))
    pairs = sorted(found)
    now = store.now_ms(0)
    look: list[Any] = []
    for queue, shard in pairs:
        stream = found[(queue, shard)]
        look += [
            ("XLEN", stream),
            ("XINFO", "GROUPS", stream),
            ("XPENDING", stream, WORKER_GROUP),
            ("ZCARD", keys.delayed(shard, queue)),
        ]
    replies = store.execute(look) if look else []
    parked = _parked(store, {shard for _, shard in pairs})
    stats = []
    for i, (queue, shard) in enumerate(pairs):
        length, groups, pending, delayed = replies[4 * i : 4 * i + 4]
        length = 0 if isinstance(length, redis.ResponseError) else int(length)
        in_flight, oldest = _pending(pending, now)
        lag = _lag(groups)
        stats.append(
            QueueStats(
                queue=queue,
                shard=shard,
                length=length,
                waiting=max(0, length - in_flight) if lag is None else lag,
                in_flight=in_flight,
                oldest_in_flight_ms=oldest,
                delayed=0 if isinstance(delayed, redis.ResponseError) else int(delayed),
                parked=parked.get((queue, shard), 0),
                dead=dead.get((queue, shard), 0),
            )
        )
    return stats


def totals(stats: Iterable[QueueStats]) -> list[QueueStats]:
    """Per queue, its shards summed."""
    summed: dict[str, QueueStats] = {}
    for each in stats:
        summed[each.queue] = summed[each.queue] + each if each.queue in summed else each
    return [dataclasses.replace(s, shard=None) for _, s in sorted(summed.items())]


def _queue_of(key: str) -> tuple[str, int] | None:
    """The queue's name and shard of a queue stream's key (None: not one)."""
    match = _QUEUE_KEY.search(key)
    return (match[2], int(match[1])) if match else None


def _escaped(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _pending(reply: Any, now_ms: int) -> tuple[int, int | None]:
    """The in-flight count and oldest age from an ``XPENDING`` summary (0 without the
    workers' group yet)."""
    if isinstance(reply, redis.ResponseError) or not reply or not reply[0]:
        return 0, None
    oldest_id = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
    return int(reply[0]), max(0, now_ms - int(oldest_id.partition("-")[0]))


def _lag(reply: Any) -> int | None:
    """The workers' group's lag from ``XINFO GROUPS`` (None when not known)."""
    if isinstance(reply, redis.ResponseError):
        return None
    for group in reply or []:
        flat = group if isinstance(group, dict) else dict(zip(*[iter(group)] * 2, strict=True))
        pairs = flat.items()
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in pairs}
        name = fields.get("name")
        if (name.decode() if isinstance(name, bytes) else name) == WORKER_GROUP:
            lag = fields.get("lag")
            return None if lag is None else int(lag)
    return None


def _parked(store: Store, shards: set[int]) -> dict[tuple[str, int], int]:
    keys = store.keys
    ordered = sorted(shards)
    indexes = store.execute([("SMEMBERS", keys.parked_index(s)) for s in ordered])
    entries = [
        (shard, parked_of(raw.decode() if isinstance(raw, bytes) else raw))
        for shard, members in zip(ordered, indexes, strict=True)
        if not isinstance(members, redis.ResponseError)
        for raw in members or ()
    ]
    if not entries:
        return {}
    counts = store.execute(
        [("ZCARD", keys.parked(shard, queue, actor)) for shard, (queue, actor) in entries]
    )
    found: dict[tuple[str, int], int] = {}
    for (shard, (queue, _)), count in zip(entries, counts, strict=True):
        found[(queue, shard)] = found.get((queue, shard), 0) + int(count)
    return found


def _dead(store: Store) -> dict[tuple[str, int], int]:
    """Dead letters per queue and shard (each keeps the key of the stream it came from),
    among the newest ``DEAD_SCAN``; those of other streams (wake-ups) are not a queue's."""
    found: dict[tuple[str, int], int] = {}
    entries: Any = store.client.xrevrange(store.keys.dead(), count=DEAD_SCAN)
    for _, fields in entries:
        where = _queue_of(bytes(fields.get(b"queue", b"")).decode(errors="replace"))
        if where is not None:
            found[where] = found.get(where, 0) + 1
    return found
