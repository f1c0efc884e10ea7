"""Pausing and resuming queues and actors, for every worker (``App.pause``,
``App.resume``, ``App.paused``)."""

from __future__ import annotations

from typing import Any

from streamflow.api.actors import Actor
from streamflow.store import pauses
from streamflow.store.keys import Keys
from streamflow.store.pauses import Paused

ActorRef = Actor[Any, Any] | str
"""An actor, or an actor's name."""


def _named(actor: ActorRef | None) -> str | None:
    return actor.name if isinstance(actor, Actor) else actor


class Pausing:
    """The App's pause methods (on its Redis client and keys)."""

    client: Any
    keys: Keys

    def pause(self, *, queue: str | None = None, actor: ActorRef | None = None) -> None:
        """Pause a queue, an actor (or its name), or both, for every worker: within a
        second, their messages are set aside as workers read them, instead of starting
        (those already running finish). ``resume`` puts them back on their queues.

        Raises:
            ValueError: neither is given, or a name that is not one.
        """
        found = pauses.entries(queue=queue, actor=_named(actor))
        self.client.sadd(self.keys.paused(), *found)

    def resume(self, *, queue: str | None = None, actor: ActorRef | None = None) -> None:
        """Undo ``pause`` (nothing for what is not paused): within a second or so, the
        messages set aside go back to their queues, oldest first, and run.

        Raises:
            ValueError: neither is given, or a name that is not one.
        """
        found = pauses.entries(queue=queue, actor=_named(actor))
        self.client.srem(self.keys.paused(), *found)

    def paused(self) -> Paused:
        """The queues and actors paused now."""
        return pauses.read(self.client, self.keys)
