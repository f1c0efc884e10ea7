"""The dead-letter stream: messages no worker could handle, kept with their bytes."""

from __future__ import annotations

import dataclasses
from typing import Any

import redis

from streamflow.model.errors import DecodeError, StreamflowError
from streamflow.model.messages import decode_task_message
from streamflow.model.schema import MESSAGE_FIELD, STATUS, TERMINAL_STATUSES
from streamflow.store.keys import Keys
from streamflow.store.plan import Plan, checked, one, pipelined, run


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

    def _parse(self, entry_id: Any, fields: Any) -> DeadLetter:
        if not isinstance(fields, dict):  # a raw reply: [name, value, ...]
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
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

    # -- as plans (``streamflow.store.plan``), carried out by both faces ------------------

    def list_plan(self, limit: int) -> Plan[list[DeadLetter]]:
        raw = yield from one(("XRANGE", self.key, "-", "+", "COUNT", limit))
        return [self._parse(entry_id, fields) for entry_id, fields in raw]

    def get_plan(self, dead_id: str) -> Plan[DeadLetter]:
        raw = yield from one(("XRANGE", self.key, dead_id, dead_id))
        if not raw:
            raise KeyError(f"no dead letter with id {dead_id!r}")
        return self._parse(*raw[0])

    def requeue_plan(self, dead_id: str) -> Plan[str]:
        letter = yield from self.get_plan(dead_id)
        try:
            workflow_id = decode_task_message(letter.data)[0]
        except DecodeError:
            workflow_id = None  # not a task message: requeued as it is, for what it is
        if workflow_id is not None:
            status = yield from one(("HGET", self._keys.idx(workflow_id), STATUS))
            # No index: archived, expired or unknown; nothing can run in it.
            if status is None or status.decode() in TERMINAL_STATUSES:
                raise StreamflowError(
                    f"dead letter {dead_id} belongs to workflow {workflow_id}, which has "
                    "ended: requeueing it would run nothing"
                )
        new_id, _ = yield [
            ("XADD", letter.queue, "*", MESSAGE_FIELD, letter.data),
            ("XDEL", self.key, dead_id),
        ]
        return str(checked(new_id).decode())

    def purge_plan(self) -> Plan[int]:
        count, _ = yield [("XLEN", self.key), ("DEL", self.key)]
        return int(checked(count))

    def list(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters."""
        return run(self.list_plan(limit), pipelined(self.client))

    def get(self, dead_id: str) -> DeadLetter:
        """One dead letter.

        Raises:
            KeyError: no dead letter has this id.
        """
        return run(self.get_plan(dead_id), pipelined(self.client))

    def requeue(self, dead_id: str) -> str:
        """Put a dead letter back on its queue (a new message); returns its new id.

        Raises:
            KeyError: no dead letter has this id.
            StreamflowError: it is a task message of a workflow that has ended (it would
                run nothing).
        """
        return run(self.requeue_plan(dead_id), pipelined(self.client))

    def purge(self) -> int:
        """Delete every dead letter; returns how many there were."""
        return run(self.purge_plan(), pipelined(self.client))
