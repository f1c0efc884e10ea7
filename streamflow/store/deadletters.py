"""The dead-letter stream: messages no worker could handle, kept with their bytes."""

from __future__ import annotations

import dataclasses
from typing import Any

import redis

from streamflow.model.errors import DecodeError, StreamflowError
from streamflow.model.messages import decode_task_message
from streamflow.model.schema import MESSAGE_FIELD, STATUS, TERMINAL_STATUSES
from streamflow.store.keys import Keys


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """One dead-lettered message."""

    id: str
    """Its id in the dead-letter stream."""
    reason: str
    queue: str
    """The stream it came from."""
    msg_id: str
    """Its id there."""
    data: bytes
    """The original bytes, intact."""
    first_seen_ms: int
    """When it was first queued (its message id's time)."""
    last_seen_ms: int
    """When it was dead-lettered."""


def _ms(stream_id: str) -> int:
    head = stream_id.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


class DeadLetters:
    """List, inspect, requeue and purge dead letters (``app.dead_letters``)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.key = keys.dead()
        self._keys = keys

    def add(self, queue: str, msg_id: str, data: bytes, reason: str) -> str:
        """Keep a message no worker could handle, with why; returns its dead-letter id."""
        # Never trimmed: a dead letter waits for an operator.
        fields = {"reason": reason, "queue": queue, "msg_id": msg_id, "data": data}
        dead_id: Any = self.client.xadd(self.key, fields)  # type: ignore[arg-type]
        return str(dead_id.decode())

    def _parse(self, entry_id: Any, fields: dict[bytes, bytes]) -> DeadLetter:
        dead_id = entry_id.decode()
        msg_id = fields.get(b"msg_id", b"").decode()
        return DeadLetter(
            id=dead_id,
            reason=fields.get(b"reason", b"").decode(errors="replace"),
            queue=fields.get(b"queue", b"").decode(),
            msg_id=msg_id,
            data=fields.get(b"data", b""),
            first_seen_ms=_ms(msg_id),
            last_seen_ms=_ms(dead_id),
        )

    def list(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters."""
        raw: Any = self.client.xrange(self.key, count=limit)
        return [self._parse(entry_id, fields) for entry_id, fields in raw]

    def get(self, dead_id: str) -> DeadLetter:
        """One dead letter.

        Raises:
            KeyError: no dead letter has this id.
        """
        raw: Any = self.client.xrange(self.key, min=dead_id, max=dead_id)
        if not raw:
            raise KeyError(f"no dead letter with id {dead_id!r}")
        return self._parse(*raw[0])

    def requeue(self, dead_id: str) -> str:
        """Put a dead letter back on its queue (a new message); returns its new id.

        Raises:
            KeyError: no dead letter has this id.
            StreamflowError: it is a task message of a workflow that has ended (it would
                run nothing).
        """
        letter = self.get(dead_id)
        try:
            workflow_id = decode_task_message(letter.data)[0]
        except DecodeError:
            workflow_id = None  # not a task message: requeued as it is, for what it is
        if workflow_id is not None and self._ended(workflow_id):
            raise StreamflowError(
                f"dead letter {dead_id} belongs to workflow {workflow_id}, which has ended: "
                "requeueing it would run nothing"
            )
        new_id: Any = self.client.xadd(letter.queue, {MESSAGE_FIELD: letter.data})
        self.client.xdel(self.key, dead_id)
        return str(new_id.decode())

    def _ended(self, workflow_id: str) -> bool:
        keys = self._keys.workflow(workflow_id)
        status: Any = self.client.hget(keys.idx, STATUS)
        if status is not None:
            return status.decode() in TERMINAL_STATUSES
        return True  # archived, expired or unknown: nothing can run in it

    def purge(self) -> int:
        """Delete every dead letter; returns how many there were."""
        count = int(self.client.xlen(self.key))
        self.client.delete(self.key)
        return count
