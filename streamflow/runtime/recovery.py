"""The recovery projector: reads wake-ups (outcomes whose projection did not follow in
time, finished workflows to archive, chunked submissions) and projects their workflows
again from the whole log; a wake-up held by a dead projector is claimed after the lease."""

from __future__ import annotations

import threading
import time
from typing import Any

from streamflow.model.errors import DecodeError
from streamflow.model.messages import decode_wake
from streamflow.model.schema import PROJECTOR_GROUP
from streamflow.runtime.faults import crash_point
from streamflow.runtime.heartbeat import Heartbeat
from streamflow.runtime.outage import Outage
from streamflow.runtime.projector import Projector
from streamflow.runtime.roles import Role
from streamflow.runtime.takeover import reclaim
from streamflow.store.connection import Store
from streamflow.store.group_reads import group_reads
from streamflow.store.wire import message_of, stream_messages

BATCH = 10


class Recovery(Role):
    """Serves the wake-up streams of ``shards`` as consumer ``name``."""

    def __init__(
        self,
        store: Store,
        projector: Projector,
        shards: tuple[int, ...],
        *,
        name: str,
        lease_ms: int,
        block_ms: int,
        heartbeat: Heartbeat,
        stopping: threading.Event,
        outage: Outage,
        log: Any,
    ) -> None:
        super().__init__("recovery", stopping, outage, log)
        self.store = store
        self.projector = projector
        self.consumer = name
        self.lease_ms = lease_ms
        self.block_ms = block_ms
        self.wake_keys = [store.keys.wake(s) for s in shards]
        self._beats_of = {store.keys.wake(s): store.keys.beats(s) for s in shards}
        self.heartbeat = heartbeat
        self._last_claim = self._last_reclaim = 0.0
        streams = {store.keys.wake(s): s for s in shards}
        self._wire = store.wire()
        # On a cluster, a pass over the shards' wake streams and a pause when none had
        # any (wake-ups are for projections already overdue: no read is parked per shard).
        self._reads = (
            None
            if store.cluster
            else group_reads(self._wire, PROJECTOR_GROUP, name, streams, block_ms)
        )

    def step(self) -> None:
        client = self.store.client
        entries: list[tuple[str, str, bytes]] = []
        if time.monotonic() - self._last_reclaim > self.heartbeat.interval_s:
            self._last_reclaim = time.monotonic()
            entries += self._reclaim_dead()
        if time.monotonic() - self._last_claim > min(self.lease_ms / 2000, 1.0):
            self._last_claim = time.monotonic()
            for key in self.wake_keys:
                claim: Any = client.xautoclaim(
                    key, PROJECTOR_GROUP, self.consumer, self.lease_ms, "0-0", count=BATCH
                )
                entries += [(key, i.decode(), message_of(f) or b"") for i, f in claim[1] if f]
        entries += self._read_each() if self._reads is None else self._reads.read(BATCH)
        for key, msg_id, data in entries:
            self.handle(key, msg_id, data)

    def _read_each(self) -> list[tuple[str, str, bytes]]:
        """New wake-ups on a cluster: a read per shard, one pipeline per master; when none
        has any, a pause of the blocking read's length."""
        command = ("XREADGROUP", "GROUP", PROJECTOR_GROUP, self.consumer, "COUNT", BATCH)
        replies = self._wire.execute([(*command, "STREAMS", key, ">") for key in self.wake_keys])
        failed = [reply for reply in replies if isinstance(reply, Exception)]
        out = [
            e
            for reply in replies
            if not isinstance(reply, Exception)
            for e in stream_messages(reply)
        ]
        if failed and not out:
            raise failed[0]
        if not out:
            self.stopping.wait(self.block_ms / 1000)
        return out

    def close(self) -> None:
        """Cut the reads in flight and give their connections back (a wake-up a cut read
        had taken is claimed by another projector after the lease)."""
        if self._reads is not None:
            self._reads.close()
        self._wire.close()

    def _reclaim_dead(self) -> list[tuple[str, str, bytes]]:
        """Wake-ups held by projectors that stopped beating (they are dead)."""
        dead_before = self.heartbeat.dead_before()
        if dead_before is None:
            return []
        out: list[tuple[str, str, bytes]] = []
        for key in self.wake_keys:
            summary: Any = self.store.client.xpending(key, PROJECTOR_GROUP)
            for holder in summary.get("consumers") or []:
                suspect = holder["name"].decode()
                if suspect == self.consumer:
                    continue
                beats = self._beats_of[key]
                call = (key, beats, PROJECTOR_GROUP, suspect, self.consumer, dead_before, BATCH)
                out += reclaim(self.store, *call)[1]
        return out

    def handle(self, wake_key: str, msg_id: str, data: bytes) -> None:
        """Project the workflow a wake-up names, then acknowledge it."""
        try:
            workflow_id, tag = decode_wake(data)
        except DecodeError as exc:
            reason = f"undecodable wake-up: {exc}"
            self.store.dead_letters.add(wake_key, msg_id, data, reason)
            self._log.error("message_dead_lettered", queue=wake_key, msg_id=msg_id, reason=reason)
        else:
            self._log.info("recovery_projection", workflow_id=workflow_id, tag=tag)
            self.projector.project(workflow_id, None)
            crash_point("recovery.after_project_before_ack")
        pipe = self.store.client.pipeline(transaction=False)
        pipe.xack(wake_key, PROJECTOR_GROUP, msg_id)
        pipe.xdel(wake_key, msg_id)
        pipe.execute()
