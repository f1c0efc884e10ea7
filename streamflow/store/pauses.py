"""What is paused: queues and actors whose messages wait, set aside ("parked"), instead
of running. One Redis set for the whole deployment (``keys.paused``); workers read it
about once a second, so a pause or a resume takes effect within that."""

from __future__ import annotations

import dataclasses
from typing import Any

from streamflow.model.options import QUEUE_NAME
from streamflow.store.keys import Keys

PAUSE_LOOK_S = 1.0
"""How often a worker reads what is paused."""


@dataclasses.dataclass(frozen=True, slots=True)
class Paused:
    """The queues and the actors paused now."""

    queues: frozenset[str] = frozenset()
    actors: frozenset[str] = frozenset()

    def holds(self, queue: str, actor: str) -> bool:
        """Whether a message of ``actor`` on ``queue`` waits."""
        return queue in self.queues or actor in self.actors

    def __bool__(self) -> bool:
        return bool(self.queues or self.actors)


def entries(*, queue: str | None, actor: str | None) -> list[str]:
    """The set's members for ``queue`` and ``actor`` (either or both).

    Raises:
        ValueError: neither is given, a queue name that is not one, or an empty actor
            name.
    """
    if queue is None and actor is None:
        raise ValueError("name a queue or an actor (queue=..., actor=...)")
    found: list[str] = []
    if queue is not None:
        if not isinstance(queue, str) or not QUEUE_NAME.fullmatch(queue):
            raise ValueError(f"not a queue name: {queue!r}")
        found.append(f"queue:{queue}")
    if actor is not None:
        if not isinstance(actor, str) or not actor:
            raise ValueError(f"not an actor name: {actor!r}")
        found.append(f"actor:{actor}")
    return found


def read(client: Any, keys: Keys) -> Paused:
    """What is paused now."""
    queues: set[str] = set()
    actors: set[str] = set()
    for raw in client.smembers(keys.paused()):
        kind, _, name = (raw.decode() if isinstance(raw, bytes) else raw).partition(":")
        (queues if kind == "queue" else actors).add(name)
    return Paused(frozenset(queues), frozenset(actors))


def parked_entry(queue: str, actor: str) -> str:
    """A parked set's entry in its shard's index."""
    return f"{queue}:{actor}"


def parked_of(entry: str) -> tuple[str, str]:
    """The queue and the actor of an index entry (a queue name has no ``:``)."""
    queue, _, actor = entry.partition(":")
    return queue, actor
