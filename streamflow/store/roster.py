"""The roster: a card per worker process (``keys.workers``), written as it beats and when
it stops, read by ``streamflow workers``, the dashboard and the metrics. A card says who
the process is, what it reads, how busy it is and when it last beat, by the Redis clock.

Liveness is by age: a card whose last beat is within ``LIVE_MS`` is live. The roster is
one hash, and it is a heartbeat with a time to live: each write sets the hash to expire
``FORGET_MS`` later, so a roster whose workers are all gone disappears a day after the
last of them, and cards silent for a day are dropped whenever the roster is read."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from streamflow.store.cluster import is_cluster
from streamflow.store.keys import Keys

LIVE_MS = 10_000
"""A worker that beat within this long is live (it beats twice a second)."""
RECENT_MS = 3600 * 1000
"""Workers that stopped (or went silent) within this long are listed by default."""
FORGET_MS = 24 * 3600 * 1000
"""Cards of workers silent for this long are dropped, and a roster no worker wrote to for
this long expires."""
STATES = ("live", "silent", "stopped")
"""What a card can say of its worker (``WorkerCard.state``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerCard:
    """One worker process, as it last described itself."""

    consumer: str
    host: str
    pid: int
    queues: tuple[str, ...]
    shards: int
    """How many shards it serves."""
    concurrency: int
    in_flight: int
    """Tasks it held (running, or fetched and waiting for a thread) at its last beat."""
    version: str
    started_ms: int
    last_beat_ms: int
    stopped_ms: int | None = None
    """When it stopped gracefully (None: it has not, or it died)."""

    def state(self, now_ms: int) -> str:
        """``live``, ``stopped`` (it said so) or ``silent`` (gone without a word)."""
        if self.stopped_ms is not None:
            return "stopped"
        return "live" if now_ms - self.last_beat_ms <= LIVE_MS else "silent"

    def recent(self, now_ms: int) -> bool:
        """Whether it is live, or stopped or went silent within ``RECENT_MS``."""
        gone_ms = self.stopped_ms or self.last_beat_ms
        return now_ms - gone_ms <= RECENT_MS or self.state(now_ms) == "live"


def write(client: Any, keys: Keys, card: WorkerCard) -> None:
    """Write ``card``, and set the roster to expire ``FORGET_MS`` from now."""
    pipe = client.pipeline(transaction=False)
    pipe.hset(keys.workers(), card.consumer, json.dumps(dataclasses.asdict(card)))
    pipe.pexpire(keys.workers(), FORGET_MS)
    pipe.execute()


def read(client: Any, keys: Keys) -> list[WorkerCard]:
    """Every card, newest beat first, but those of workers silent for ``FORGET_MS`` by
    the Redis clock: those are dropped from Redis (one a newer version cannot read is
    skipped)."""
    cards, _ = read_at(client, keys)
    return cards


def read_at(client: Any, keys: Keys) -> tuple[list[WorkerCard], int]:
    """``read``, and the Redis time it was read at (ms), in one round trip."""
    key = keys.workers()
    # The clock of the server that holds the roster, read with it.
    node = client
    if is_cluster(client):
        node = client.get_redis_connection(client.get_node_from_key(key))
    pipe = node.pipeline(transaction=False)
    pipe.time()
    pipe.hgetall(key)
    (seconds, micros), raw = pipe.execute()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    cards = _cards(raw)
    old = [field for field, card in cards if card.last_beat_ms < now_ms - FORGET_MS]
    if old:
        node.hdel(key, *old)
    kept = [card for _, card in cards if card.last_beat_ms >= now_ms - FORGET_MS]
    return sorted(kept, key=lambda card: -card.last_beat_ms), now_ms


def forget(client: Any, keys: Keys, before_ms: int) -> int:
    """Drop the cards of workers silent since before ``before_ms``; returns how many."""
    cards = _cards(client.hgetall(keys.workers()))
    old = [field for field, card in cards if card.last_beat_ms < before_ms]
    if old:
        client.hdel(keys.workers(), *old)
    return len(old)


def _cards(raw: dict[Any, Any]) -> list[tuple[Any, WorkerCard]]:
    """Each readable card of a roster's ``HGETALL``, with its field (one a newer version
    wrote that this one cannot read is left alone)."""
    cards = []
    for field, value in raw.items():
        try:
            data = json.loads(value)
            data["queues"] = tuple(data["queues"])
            cards.append((field, WorkerCard(**data)))
        except (ValueError, TypeError, KeyError):
            continue
    return cards


def counts(cards: list[WorkerCard], now_ms: int) -> dict[str, int]:
    """How many of the recent cards (``WorkerCard.recent``) are in each state."""
    found = dict.fromkeys(STATES, 0)
    for card in cards:
        if card.recent(now_ms):
            found[card.state(now_ms)] += 1
    return found
