"""Liveness by heartbeat: a worker process beats every ``interval_s`` on each shard it
serves, in the Redis clock; a consumer that has missed its beats is dead, and what it
held is taken over at once (``Consumer`` and ``Recovery`` reclaim it), instead of after
the lease.

A consumer is dead when this one has beaten ``misses`` times since that consumer's last
beat, all in the Redis clock. So a pause of Redis itself (every beat late at once) or of
this process (it missed its own beats too) is never mistaken for a death; only a
consumer that stayed silent while this one kept beating is.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from streamflow.runtime.outage import Outage
from streamflow.runtime.roles import Role
from streamflow.runtime.roster import Roster
from streamflow.store import scripts
from streamflow.store.connection import Store

FORGET_MS = 24 * 3600 * 1000
"""Beats of consumers silent for this long are dropped from the beats sets."""


class Heartbeat(Role):
    """Beats for consumer ``name`` on ``shards``; tells who is dead."""

    def __init__(
        self,
        store: Store,
        shards: tuple[int, ...],
        *,
        name: str,
        interval_s: float,
        misses: int,
        released: threading.Event,
        stopping: threading.Event,
        outage: Outage,
        log: Any,
        roster: Roster | None = None,
    ) -> None:
        super().__init__("heartbeat", stopping, outage, log)
        if interval_s <= 0 or misses < 1:
            raise ValueError(
                f"heartbeats need an interval above 0 and at least 1 miss "
                f"(got {interval_s!r} s and {misses!r})"
            )
        self.store = store
        self.shards = shards
        self.name = name
        self.interval_s = interval_s
        self.misses = misses
        self.released = released
        self._beats: collections.deque[int] = collections.deque(maxlen=misses)
        self.roster = roster
        """This process's card, written after the beats (``runtime.roster``)."""

    def running(self) -> bool:
        # Past ``stopping`` too: a stopping worker is alive while its tasks finish.
        return not self.released.is_set()

    def beat(self) -> None:
        """Beat once on every shard (the first beat is made at start, before any read)."""
        calls = [
            scripts.beat(
                beats=self.store.keys.beats(shard), consumer=self.name, forget_ms=FORGET_MS
            )
            for shard in self.shards
        ]
        times = self.store.scripts.batch(calls)
        for result in times:
            if isinstance(result, Exception):
                raise result
        self._beats.append(min(int(t) for t in times))
        if self.roster is not None:
            self.roster.beat(max(int(t) for t in times))

    def step(self) -> None:
        if not self.released.wait(self.interval_s):
            self.beat()

    def dead_before(self) -> int | None:
        """A consumer whose last beat is before this Redis time (ms) is dead: this one has
        beaten ``misses`` times since. None until this one has beaten that often."""
        if len(self._beats) < self.misses:
            return None
        return self._beats[0]

    def leave(self) -> None:
        """Stop beating for good (a graceful stop): drop this consumer's beats."""
        calls = [
            scripts.beat(beats=self.store.keys.beats(shard), consumer=self.name, leave=True)
            for shard in self.shards
        ]
        times = self.store.scripts.batch(calls)
        for result in times:
            if isinstance(result, Exception):
                raise result
        if self.roster is not None and times:
            self.roster.leave(max(int(t) for t in times))
