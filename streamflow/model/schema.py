"""The names the Python shell and the Lua scripts share, defined once.

Index fields, idempotency keys, statuses, consumer groups, stream entry fields, decision
kinds, event type codes. The Lua scripts use the same names as upper-case identifiers,
written in as strings when a script is loaded (``lua_with_names``, used by
``streamflow.store.runner``); a test reads every Lua file and fails on a name spelled by
hand.
"""

from __future__ import annotations

import enum
import re

# -- workflow statuses (index field ``st``, the fold's ``State.status``) ---------------

PENDING = "pending"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, CANCELLED})

ARCHIVE_STATUS_CODES = {COMPLETED: 1, FAILED: 2, CANCELLED: 3}
"""A terminal status as the one byte of an archive's summary."""

# -- consumer groups and stream entry fields -------------------------------------------

WORKER_GROUP = "workers"
"""Consumer group of every queue stream."""
PROJECTOR_GROUP = "projectors"
"""Consumer group of every wake-up stream."""

EVENT_FIELD = "e"
"""A log entry's encoded event."""
SEQ_FIELD = "s"
"""A log entry's sequence number."""
MESSAGE_FIELD = "m"
"""A queue or wake-up message's bytes."""

# -- a shard's definitions (``defs`` hash: definition hash -> workflows using it) -------

TRACKED = "_"
"""Present while the shard's definitions are tracked: a definition missing while it is
there was removed (no kept workflow used it), not lost with the server's data."""


NO_DEFINITION = "-"
"""An expiry member's definition hash when the workflow had none on record."""


def expiry_member(workflow_id: str, def_hash: str, retention_ms: int) -> str:
    """A finished workflow's member of its shard's expiry set: what its removal needs."""
    return f"{workflow_id} {def_hash} {retention_ms}"


def parse_expiry_member(member: str) -> tuple[str, str, int]:
    """Inverse of ``expiry_member``: workflow id, definition hash (``NO_DEFINITION`` if
    it had none), retention in ms.

    Raises:
        ValueError: not an expiry member.
    """
    workflow_id, def_hash, retention = member.split(" ")
    if not workflow_id or not def_hash:
        raise ValueError(f"not an expiry member: {member!r}")
    return workflow_id, def_hash, int(retention)


# -- the index (``idx`` hash) ----------------------------------------------------------

LENGTH = "n"
"""The log length the index reflects."""
LAST_DECISION = "d"
"""Sequence number of the last decision (enqueue, release, terminal)."""
STATUS = "st"
DEFINITION = "def"
"""The definition's content hash."""
RETENTION = "ret"
"""How long a finished workflow is kept, in ms."""

# Per node (or barrier): the prefix, then its id.
ATTEMPT = "a:"
"""Its latest enqueued attempt."""
OWNER = "m:"
"""The queue message that started (or took over) its current attempt."""
DELIVERIES = "c:"
"""TaskStarted events of its current attempt."""
RESULT = "ok:"
"""Stream id of its TaskSucceeded."""
FAILURE = "ko:"
"""Stream id of its final TaskFailed."""
RETRY_BASE = "rb:"
"""Attempts it had before its workflow was last resumed (its retries count from there)."""
ARGS = "x:"
"""Its encoded arguments."""
COUNT = "bc:"
"""A barrier's sources done (decrements recorded), or with ``END_COUNT`` the workflow's
sinks done."""
END_COUNT = "e"
"""The ``COUNT`` of the workflow's end: its sinks done (succeeded, or failed with
allow_failure), kept by the outcome script like a barrier's decrements."""

# Idempotency keys: each is also an index field (key -> stream id of the event holding
# it); prefixed ones take the node (or barrier) and attempt (or source) after them.
SUBMITTED = "sub"
END = "end"
HISTORY_WARNING = "hw"
ENQUEUED = "enq:"
OUTCOME = "out:"
DECREMENTED = "dec:"
RELEASED = "rel:"
SIGNAL = "sig:"
RESUMED = "res:"
CHILD = "ch:"


def enqueued_key(node: int, attempt: int) -> str:
    return f"{ENQUEUED}{node}:{attempt}"


def outcome_key(node: int, attempt: int) -> str:
    return f"{OUTCOME}{node}:{attempt}"


def decremented_key(barrier: int, source: int) -> str:
    return f"{DECREMENTED}{barrier}:{source}"


def released_key(barrier: int) -> str:
    return f"{RELEASED}{barrier}"


def signal_key(name: str) -> str:
    return f"{SIGNAL}{name}"


def resumed_key(epoch: int) -> str:
    return f"{RESUMED}{epoch}"


def child_key(child_id: str) -> str:
    return f"{CHILD}{child_id}"


# -- what the apply and submit scripts are told ----------------------------------------


class Decision(enum.StrEnum):
    """The kind of each decision slot of the apply and submit scripts."""

    ENQUEUE = "E"
    ENQUEUE_FINALIZER = "F"
    """An enqueue accepted after the workflow's end (a callback)."""
    DECREMENT = "D"
    RELEASE = "R"
    WARN = "W"
    TERMINAL = "T"
    SIGNAL = "I"
    """A signal received (an input from outside the workflow)."""
    RESUME = "U"
    """A failed workflow resumed (the resume script has reopened it)."""
    OUTCOME = "O"
    """An outcome decided, not reported by a worker: a signal node's success (its
    idempotency key must still be free, or the call conflicts)."""


class Outcome(enum.StrEnum):
    """What an outcome is, for the outcome script."""

    SUCCESS = "ok"
    RETRY = "retry"
    """A failure whose attempt is retried."""
    FINAL = "final"
    """A failure for good."""


# -- event types -----------------------------------------------------------------------


class EventType(enum.IntEnum):
    """The code each event type is encoded with. A code keeps its meaning forever."""

    WORKFLOW_SUBMITTED = 1
    TASK_ENQUEUED = 2
    TASK_STARTED = 3
    TASK_SUCCEEDED = 4
    TASK_FAILED = 5
    BARRIER_DECREMENTED = 6
    BARRIER_RELEASED = 7
    WORKFLOW_COMPLETED = 8
    WORKFLOW_FAILED = 9
    WORKFLOW_CANCELLED = 10
    HISTORY_WARNING = 11
    SIGNAL_RECEIVED = 12
    WORKFLOW_RESUMED = 13
    CHILD_STARTED = 14


# -- the Lua side ----------------------------------------------------------------------

LUA_NAMES: dict[str, str] = {
    "RUNNING": RUNNING,
    "COMPLETED": COMPLETED,
    "FAILED": FAILED,
    "CANCELLED": CANCELLED,
    "WORKER_GROUP": WORKER_GROUP,
    "EVENT_FIELD": EVENT_FIELD,
    "SEQ_FIELD": SEQ_FIELD,
    "MESSAGE_FIELD": MESSAGE_FIELD,
    "LENGTH": LENGTH,
    "LAST_DECISION": LAST_DECISION,
    "STATUS": STATUS,
    "DEFINITION": DEFINITION,
    "RETENTION": RETENTION,
    "ATTEMPT": ATTEMPT,
    "OWNER": OWNER,
    "DELIVERIES": DELIVERIES,
    "RESULT": RESULT,
    "FAILURE": FAILURE,
    "RETRY_BASE": RETRY_BASE,
    "ARGS": ARGS,
    "COUNT": COUNT,
    "SUBMITTED": SUBMITTED,
    "END": END,
    "OUTCOME": OUTCOME,
    "TRACKED": TRACKED,
    **{f"DECISION_{kind.name}": kind.value for kind in Decision},
    **{f"OUTCOME_{kind.name}": kind.value for kind in Outcome},
}
"""Every name the scripts use, by the upper-case identifier that stands for it in Lua."""


_LUA_TOKEN = re.compile(r"""(?P<string>'[^']*'|"[^"]*")|(?P<name>\b[A-Z][A-Z0-9_]*\b)""")


def lua_with_names(source: str, extra: dict[str, str] | None = None) -> str:
    """``source`` with every name of ``LUA_NAMES`` (and ``extra``) written in as the
    quoted string it stands for, and ``SUMMARY_STATUS`` as a table of the archive
    summary's status codes. Done once, when a script is loaded: a name costs nothing
    when the script runs. Comments and string literals are left as they are."""
    names = {name: f"'{value}'" for name, value in {**LUA_NAMES, **(extra or {})}.items()}
    codes = ", ".join(f"['{status}'] = {code}" for status, code in ARCHIVE_STATUS_CODES.items())
    names["SUMMARY_STATUS"] = f"({{{codes}}})"

    def substitute(match: re.Match[str]) -> str:
        name = match.group("name")
        return names.get(name, name) if name else match.group(0)

    lines = []
    for line in source.splitlines():
        code, dashes, comment = line.partition("--")
        lines.append(_LUA_TOKEN.sub(substitute, code) + dashes + comment)
    return "\n".join(lines) + "\n"
