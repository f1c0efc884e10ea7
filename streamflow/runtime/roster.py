"""A worker process's card in the roster (``store.roster``): written after a beat at
most every ``CARD_EVERY_S``, and once more when the worker stops."""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from streamflow.model.version import __version__
from streamflow.store import roster
from streamflow.store.connection import Store
from streamflow.store.roster import FORGET_MS, WorkerCard

if TYPE_CHECKING:
    from streamflow.runtime.tally import Tally

CARD_EVERY_S = 2.0
PRUNE_EVERY_S = 300.0


class Roster:
    """The card of worker ``name``: its ``queues``, ``shards`` and ``concurrency``, and
    how many tasks it holds (``in_flight()``); written with the process's stats
    (``tally``), added into Redis at the same pace."""

    def __init__(
        self,
        store: Store,
        *,
        name: str,
        queues: tuple[str, ...],
        shards: int,
        concurrency: int,
        in_flight: Callable[[], int],
        tally: Tally | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.queues = queues
        self.shards = shards
        self.concurrency = concurrency
        self.in_flight = in_flight
        self.tally = tally
        self._started_ms: int | None = None
        self._written = self._pruned = -math.inf

    def beat(self, now_ms: int) -> None:
        """After a beat at Redis time ``now_ms``: the card, if due."""
        if time.monotonic() - self._written < CARD_EVERY_S:
            return
        self._written = time.monotonic()
        roster.write(self.store.client, self.store.keys, self._card(now_ms))
        if self.tally is not None:
            self.tally.flush(now_ms)
        if time.monotonic() - self._pruned > PRUNE_EVERY_S:
            self._pruned = time.monotonic()
            roster.forget(self.store.client, self.store.keys, now_ms - FORGET_MS)

    def leave(self, now_ms: int) -> None:
        """The worker stopped (gracefully) at Redis time ``now_ms``."""
        roster.write(self.store.client, self.store.keys, self._card(now_ms, stopped=True))
        if self.tally is not None:
            self.tally.flush(now_ms)

    def _card(self, now_ms: int, stopped: bool = False) -> WorkerCard:
        if self._started_ms is None:
            self._started_ms = now_ms
        return WorkerCard(
            consumer=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self.queues,
            shards=self.shards,
            concurrency=self.concurrency,
            in_flight=self.in_flight(),
            version=__version__,
            started_ms=self._started_ms,
            last_beat_ms=now_ms,
            stopped_ms=now_ms if stopped else None,
        )
