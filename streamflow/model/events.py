"""The event types of a workflow log (DESIGN §6).

Each event is one stream entry: field ``e`` holds ``encode_event(event)``, field ``s`` its
sequence number (assigned by the script). Its time is the stream id's milliseconds, the
Redis clock. ``cause`` is the sequence number of the event it reacts to (0: none).

Existing event codes keep their meaning forever; new types get new codes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from streamflow.model import codec, schema
from streamflow.model.errors import DecodeError
from streamflow.model.schema import EventType


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event."""

    code: ClassVar[int] = 0
    cause: int = 0
    """Sequence number of the event this one reacts to (0: none)."""

    def idempotency_key(self) -> str | None:
        """The index key under which at most one such event may exist, or None."""
        return None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowSubmitted(Event):
    code: ClassVar[int] = int(EventType.WORKFLOW_SUBMITTED)
    def_hash: str
    """Content hash of the definition (key ``sf:{<shard>}:def:<hash>``)."""
    args: dict[int, bytes]
    """Per task node: ``codec.encode([args, kwargs])``; nodes without arguments are absent."""
    options: dict[str, Any]
    """Workflow options (queue overrides, durability, ...)."""
    engine_version: str
    """streamflow version that submitted it."""

    def idempotency_key(self) -> str:
        return schema.SUBMITTED


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskEnqueued(Event):
    code: ClassVar[int] = int(EventType.TASK_ENQUEUED)
    node: int
    attempt: int
    delay_ms: int = 0
    """Due time = time of the cause event + delay_ms."""

    def idempotency_key(self) -> str:
        return schema.enqueued_key(self.node, self.attempt)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskStarted(Event):
    code: ClassVar[int] = int(EventType.TASK_STARTED)
    node: int
    attempt: int
    worker: str
    msg_id: str
    """Queue message id of this delivery (tells deliveries of one attempt apart)."""
    takeover: bool = False
    """This message takes the attempt over: the one that started it was lost (no longer
    pending anywhere) before an outcome, and the sweep sent this one instead."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskSucceeded(Event):
    code: ClassVar[int] = int(EventType.TASK_SUCCEEDED)
    node: int
    attempt: int
    result: Any = None
    result_ref: str = ""
    """Set for a result too large for the log: its field in the workflow's results hash
    (``result`` is then None)."""

    def idempotency_key(self) -> str:
        return schema.outcome_key(self.node, self.attempt)


@dataclasses.dataclass(frozen=True, slots=True)
class OutOfLine:
    """Stands for a result stored out of line (see ``TaskSucceeded.result_ref``)."""

    field: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailed(Event):
    code: ClassVar[int] = int(EventType.TASK_FAILED)
    node: int
    attempt: int
    error: dict[str, Any]
    """``type``, ``message``, ``traceback`` as plain data."""
    retry_delay_ms: int | None = None
    """None: the failure is final; otherwise the next attempt is due this long after it."""
    later: bool = False
    """The worker's policy asked for this retry whatever ``max_retries`` says (a rate
    limit: "try again later", or the actor's ``retry_when``)."""
    exhausted: bool = False
    """A final failure because the retry policy declined another attempt (its retries
    used up, or ``retry_when`` said no), not because of what was raised (``throws``, a
    result that cannot be kept, a message too old): ``on_retry_exhausted`` runs."""

    def idempotency_key(self) -> str:
        return schema.outcome_key(self.node, self.attempt)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BarrierDecremented(Event):
    code: ClassVar[int] = int(EventType.BARRIER_DECREMENTED)
    barrier: int
    source: int

    def idempotency_key(self) -> str:
        return schema.decremented_key(self.barrier, self.source)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BarrierReleased(Event):
    code: ClassVar[int] = int(EventType.BARRIER_RELEASED)
    barrier: int

    def idempotency_key(self) -> str:
        return schema.released_key(self.barrier)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowCompleted(Event):
    code: ClassVar[int] = int(EventType.WORKFLOW_COMPLETED)

    def idempotency_key(self) -> str:
        return schema.END


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowFailed(Event):
    code: ClassVar[int] = int(EventType.WORKFLOW_FAILED)
    error: dict[str, Any]

    def idempotency_key(self) -> str:
        return schema.END


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowCancelled(Event):
    code: ClassVar[int] = int(EventType.WORKFLOW_CANCELLED)
    reason: str

    def idempotency_key(self) -> str:
        return schema.END


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HistoryWarning(Event):
    """The log passed its budget's warning size (once per workflow)."""

    code: ClassVar[int] = int(EventType.HISTORY_WARNING)
    events: int
    """Length of the log when the warning was decided."""
    bytes: int
    """Encoded size of the log's events then."""

    def idempotency_key(self) -> str:
        return schema.HISTORY_WARNING


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SignalReceived(Event):
    """A signal sent to the workflow from outside (``App.signal``), at most once per
    name. The node waiting for it (``Signal(name)``) succeeds with ``payload``, now or
    once it is reached."""

    code: ClassVar[int] = int(EventType.SIGNAL_RECEIVED)
    name: str
    payload: Any = None
    sender: str = ""
    """Who or what sent it, as the sender said (free text; may be empty)."""

    def idempotency_key(self) -> str:
        return schema.signal_key(self.name)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowResumed(Event):
    """A failed workflow resumed (``App.resume``): each node in ``nodes`` runs again
    from the attempt given (with its retries counted afresh), every result it had is
    kept, and the workflow may end again (its ``end`` key is free once more)."""

    code: ClassVar[int] = int(EventType.WORKFLOW_RESUMED)
    epoch: int
    """How many times the workflow has been resumed, this one included."""
    nodes: dict[int, int]
    """Task node -> its next attempt: the nodes that failed for good, or were cut short
    by the end."""
    reason: str = ""
    by: str = ""
    """Who or what asked, as they said (free text; may be empty)."""

    def idempotency_key(self) -> str:
        return schema.resumed_key(self.epoch)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChildStarted(Event):
    """An attempt of ``node`` started the child workflow ``child`` (a ``Child`` node's
    run, or ``current_task().submit``); recorded before the child is submitted, so the
    log names every child that may exist. Not a decision: nothing follows from it."""

    code: ClassVar[int] = int(EventType.CHILD_STARTED)
    node: int
    attempt: int
    child: str
    """The child's workflow id (``streamflow.model.children.child_workflow_id``)."""
    detached: bool = False
    """Cancelling this workflow leaves a detached child running."""

    def idempotency_key(self) -> str:
        return schema.child_key(self.child)


TERMINAL = (WorkflowCompleted, WorkflowFailed, WorkflowCancelled)
"""The events that end a workflow (idempotency key ``end``)."""
DECISIONS = (TaskEnqueued, BarrierReleased, BarrierDecremented, HistoryWarning, *TERMINAL)
"""The events ``decide`` produces."""

_TYPES: dict[int, type[Event]] = {
    cls.code: cls
    for cls in (
        WorkflowSubmitted,
        TaskEnqueued,
        TaskStarted,
        TaskSucceeded,
        TaskFailed,
        BarrierDecremented,
        BarrierReleased,
        WorkflowCompleted,
        WorkflowFailed,
        WorkflowCancelled,
        HistoryWarning,
        SignalReceived,
        WorkflowResumed,
        ChildStarted,
    )
}
_FIELDS: dict[int, tuple[str, ...]] = {
    code: tuple(f.name for f in dataclasses.fields(cls)) for code, cls in _TYPES.items()
}


def encode_event(event: Event) -> bytes:
    """Encode as ``[code, field values in declaration order]`` (cause first).

    A submission's definition hash is stored as its 16 raw bytes, not 32 hex digits.
    """
    values = [getattr(event, name) for name in _FIELDS[event.code]]
    if event.code == WorkflowSubmitted.code:
        values[1] = _hash_bytes(values[1])
    return codec.encode([event.code, *values], what=type(event).__name__)


def _hash_bytes(def_hash: str) -> str | bytes:
    try:
        raw = bytes.fromhex(def_hash)
    except (TypeError, ValueError):
        return def_hash  # not a hash of ours: kept as given
    # Only a canonical spelling round-trips through .hex().
    return raw if raw.hex() == def_hash else def_hash


def encode_with_cause_hole(event: Event) -> tuple[bytes, bytes]:
    """The encoding of ``event`` split where its cause goes, for a script to fill in.

    A script that appends an event right after one whose sequence number it assigns
    itself (the outcome script's BarrierDecremented) joins ``prefix``, the msgpack
    encoding of the cause, and ``suffix``. Only for small events (never compressed).
    """
    values = [getattr(event, name) for name in _FIELDS[event.code]]
    assert _FIELDS[event.code][0] == "cause" and len(values) < 15
    head = bytes([codec.VERSION << 4, 0x90 | (len(values) + 1)]) + codec.pack(event.code)
    tail = b"".join(codec.pack(v) for v in values[1:])
    return head, tail


def decode_event(data: bytes) -> Event:
    """Inverse of ``encode_event``.

    Raises:
        DecodeError: unknown event code or malformed fields.
    """
    raw = codec.decode(data)
    if (
        not isinstance(raw, list)
        or not raw
        or type(raw[0]) is not int  # not bool, not a list: only known codes
        or raw[0] not in _TYPES
    ):
        raise DecodeError(f"not an event: {raw!r:.80}", data)
    code = raw[0]
    names = _FIELDS[code]
    values = raw[1:]
    if len(values) > len(names):
        raise DecodeError(f"event {code} has {len(values)} fields, expected {len(names)}", data)
    if code == WorkflowSubmitted.code and len(values) > 1 and isinstance(values[1], bytes):
        values[1] = values[1].hex()
    try:
        return _TYPES[code](**dict(zip(names, values, strict=False)))
    except TypeError as exc:
        raise DecodeError(f"malformed event {code}: {exc}", data) from exc


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One event as it sits in the log."""

    seq: int
    """Sequence number, dense from 1."""
    stream_id: str
    """Stream id (``<ms>-<n>``); its milliseconds are the event's time."""
    event: Event
    size: int = 0
    """Encoded size of the event in bytes (0: not known, e.g. made in memory)."""

    @property
    def time_ms(self) -> int:
        """The event's time: the Redis clock when it was appended."""
        return int(self.stream_id.split("-", 1)[0])


RawEntry = tuple[str, int, bytes]
"""(stream id, sequence number, encoded event) - an entry exactly as stored."""


def to_entry(raw: RawEntry) -> Entry:
    """Decode one raw entry."""
    stream_id, seq, payload = raw
    return Entry(seq=seq, stream_id=stream_id, event=decode_event(payload), size=len(payload))
