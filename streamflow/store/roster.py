"""The roster: a card per worker process (``keys.workers``), written as it beats and when
it stops, read by ``streamflow workers`` and the dashboard. A card says who the process
is, what it reads, how busy it is and when it last beat, by the Redis clock."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from streamflow.store.keys import Keys

LIVE_MS = 10_000
"""A worker that beat within this long is live (it beats twice a second)."""
FORGET_MS = 24 * 3600 * 1000
"""Cards of workers silent for this long are dropped."""


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


def write(client: Any, keys: Keys, card: WorkerCard) -> None:
    client.hset(keys.workers(), card.consumer, json.dumps(dataclasses.asdict(card)))


def read(client: Any, keys: Keys) -> list[WorkerCard]:
    """Every card, newest beat first (one a newer version cannot read is skipped)."""
    cards: list[WorkerCard] = []
    for raw in client.hvals(keys.workers()):
        try:
            data = json.loads(raw)
            data["queues"] = tuple(data["queues"])
            cards.append(WorkerCard(**data))
        except (ValueError, TypeError, KeyError):
            continue
    return sorted(cards, key=lambda card: -card.last_beat_ms)


def forget(client: Any, keys: Keys, before_ms: int) -> int:
    """Drop the cards of workers silent since before ``before_ms``; returns how many."""
    old = [card.consumer for card in read(client, keys) if card.last_beat_ms < before_ms]
    if old:
        client.hdel(keys.workers(), *old)
    return len(old)
