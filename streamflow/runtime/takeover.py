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
            call = scripts.reclaim(
                stream=key,
                beats=self._beats_of[key],
                group=WORKER_GROUP,
                suspect=suspect,
                consumer=self.name,
                dead_before=dead_before,
                count=want,
            )
            now, claimed = self.store.scripts.run(call)
            if len(claimed) < want:
                self.suspects.discard((key, suspect))  # alive, or nothing left to take
            for msg_id, fields in claimed:
                data = message_of(fields)
                if data is None:
                    continue  # deleted meanwhile
                out.append((key, msg_id.decode(), data))
                taken[msg_id.decode()] = (suspect, int(now))
            if claimed:
                self._log.warning(
                    "dead_consumer_reclaimed", dead=suspect, queue=key, messages=len(claimed)
                )
        return out
