"""Taking messages over from other consumers of the workers' group: those whose lease
ran out (stale), and at once those of consumers that stopped beating (dead)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamflow.logs import get_logger
from streamflow.model.schema import WORKER_GROUP
from streamflow.runtime.heartbeat import Heartbeat
from streamflow.store import scripts
from streamflow.store.connection import Store
from streamflow.store.wire import message_of

log = get_logger(__name__)

Message = tuple[str, str, bytes]
"""A queue stream, a message id and the message's bytes."""


class Takeover:
    """What consumer ``name`` takes over on the queues of ``queue_keys`` (queue stream ->
    its shard).

    Args:
        store: the Redis of the queues.
        heartbeat: this worker process's beats (the clock that judges others dead).
        lease_ms: a message unacknowledged this long is stale.
    """

    def __init__(
        self,
        name: str,
        queue_keys: Mapping[str, int],
        *,
        store: Store,
        heartbeat: Heartbeat,
        lease_ms: int,
    ) -> None:
        self.name = name
        self.queue_keys = list(queue_keys)
        self.store = store
        self.heartbeat = heartbeat
        self.lease_ms = lease_ms
        self._beats_of = {key: store.keys.beats(shard) for key, shard in queue_keys.items()}
        self.suspects: set[tuple[str, str]] = set()
        """(queue stream, consumer): other consumers seen holding messages."""
        self._cursor: dict[str, str] = {}
        self._log = log.bind(consumer=name)

    def claim_stale(self, count: int) -> list[Message]:
        """Messages whose holder has not acknowledged them within the lease."""
        out: list[Message] = []
        for key in self.queue_keys:
            claim: Any = self.store.client.xautoclaim(
                key,
                WORKER_GROUP,
                self.name,
                self.lease_ms,
                self._cursor.get(key, "0-0"),
                count=count,
            )
            # Go on from where the scan stopped next time (0-0 after a full pass).
            self._cursor[key] = claim[0].decode()
            for msg_id, fields in claim[1]:
                if fields:  # deleted meanwhile: XAUTOCLAIM drops it from the PEL
                    out.append((key, msg_id.decode(), message_of(fields) or b""))
        return out

    def find_dead(self) -> None:
        """Note which other consumers hold messages (once a beat); ``reclaim_dead`` takes
        over from those that stopped beating."""
        client = self.store.client
        for key in self.queue_keys:
            summary: Any = client.xpending(key, WORKER_GROUP)
            for holder in summary.get("consumers") or []:
                suspect = holder["name"].decode()
                if suspect != self.name:
                    self.suspects.add((key, suspect))

    def reclaim_dead(self, count: int, taken: dict[str, tuple[str, int]]) -> list[Message]:
        """Take over up to ``count`` messages held by consumers that stopped beating
        (before reading new ones: they are older); ``taken`` gets, per message, whom it
        was taken from and when (Redis time)."""
        dead_before = self.heartbeat.dead_before()
        if dead_before is None:
            return []
        out: list[Message] = []
        for key, suspect in list(self.suspects):
            if len(out) >= count:
                break
            want = count - len(out)
            beats = self._beats_of[key]
            call = (key, beats, WORKER_GROUP, suspect, self.name, dead_before, want)
            now, claimed, held = reclaim(self.store, *call)
            if held < want:
                self.suspects.discard((key, suspect))  # alive, or nothing left to take
            out += claimed
            for _, msg_id, _ in claimed:
                taken[msg_id] = (suspect, now)
            if claimed:
                self._log.warning(
                    "dead_consumer_reclaimed", dead=suspect, queue=key, messages=len(claimed)
                )
        return out


def reclaim(
    store: Store,
    stream: str,
    beats: str,
    group: str,
    suspect: str,
    consumer: str,
    dead_before: int,
    count: int,
) -> tuple[int, list[Message], int]:
    """Take over up to ``count`` of the messages ``suspect`` holds on ``stream`` if it
    stopped beating (``reclaim.lua``): the Redis time, the messages still there (one
    deleted meanwhile is left out), and how many the script claimed."""
    call = scripts.reclaim(
        stream=stream,
        beats=beats,
        group=group,
        suspect=suspect,
        consumer=consumer,
        dead_before=dead_before,
        count=count,
    )
    now, claimed = store.scripts.run(call)
    out: list[Message] = []
    for msg_id, fields in claimed:
        data = message_of(fields)
        if data is not None:
            out.append((stream, msg_id.decode(), data))
    return int(now), out, len(claimed)
