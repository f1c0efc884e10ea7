"""The scripts' declared interfaces: one typed wrapper per Lua file in ``lua/``.

Each wrapper shares its script's name, takes its KEYS and ARGV as keyword arguments named
as the script's header names them, and returns a ``Call`` for ``Scripts.run`` or
``Scripts.batch`` (``streamflow.store.runner``). Only these functions put arguments in
the positions a script reads them from; every key a script touches arrives in KEYS.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from streamflow.model import schema
from streamflow.store.decisions import Decisions
from streamflow.store.keys import WorkflowKeys


class Reply(enum.Enum):
    """What a script answered (the Lua constants ``REPLY_<name>``)."""

    OK = "OK"
    RUN = "RUN"
    DUP = "DUP"
    STALE = "STALE"
    ALREADY_DONE = "ALREADY_DONE"
    REBUILD = "REBUILD"
    CONFLICT = "CONFLICT"
    GONE = "GONE"
    TERMINAL = "TERMINAL"
    EXISTS = "EXISTS"
    RUNNING = "RUNNING"
    NODEF = "NODEF"


_CODES: dict[Any, Reply] = {
    **{code.value: code for code in Reply},
    **{code.value.encode(): code for code in Reply},
}


def reply_code(raw: Any) -> Reply:
    """The reply code of a script's answer (its first element).

    Raises:
        ValueError: not a reply code (a bad reply).
    """
    try:
        return _CODES[raw[0]]
    except (KeyError, TypeError, IndexError):
        raise ValueError(f"{raw!r:.80} is not a script reply") from None


class Call(NamedTuple):
    """One script call, its arguments in place."""

    script: str
    keys: list[str]
    args: list[Any]


def _flag(value: bool) -> str:
    return "1" if value else "0"


# -- one wrapper per script ------------------------------------------------------------


def submit(
    *,
    wf: WorkflowKeys,
    definition: str,
    definitions: str,
    submitted: bytes,
    def_hash: str,
    wake: bytes,
    grace_ms: int,
    retention_ms: int,
    definition_bytes: bytes,
    args: Mapping[int, bytes],
    decided: Decisions,
) -> Call:
    """``submit.lua``: create the workflow with its roots' decisions (``definition``: the
    key its definition is stored under, ``definition_bytes`` to store it, or empty when
    it is known to be; ``definitions``: the shard's count of the workflows using each)."""
    pairs: list[Any] = []
    for node, blob in args.items():
        pairs += [node, blob]
    keys = [wf.log, wf.idx, wf.archive, wf.active, wf.wake_due, wf.expiry, wf.tombstone, wf.ended]
    keys += [definition, definitions, wf.submitted]
    argv = [wf.workflow_id, submitted, def_hash, wake, grace_ms, wf.done_channel, retention_ms]
    argv.append(definition_bytes)
    return Call(
        "submit",
        keys + decided.queue_keys,
        [*argv, len(args), *pairs, decided.total, *decided.slots],
    )


def start(
    *,
    wf: WorkflowKeys,
    queue: str,
    node: int,
    attempt: int,
    msg_id: str,
    started: bytes,
    finalizer: bool,
    catch_up_after: str,
    catch_up_count: int,
    takeover: bytes,
) -> Call:
    """``start.lua``: what to do with one delivered task message; for RUN, record it."""
    return Call(
        "start",
        [wf.log, wf.idx, wf.archive, queue],
        [
            node,
            attempt,
            msg_id,
            started,
            _flag(finalizer),
            catch_up_after,
            catch_up_count,
            takeover,
        ],
    )


def results(*, wf: WorkflowKeys, fields: Sequence[str]) -> Call:
    """``results.lua``: the events (or raw index values) the index ``fields`` name."""
    return Call("results", [wf.log, wf.idx], list(fields))


def outcome(
    *,
    wf: WorkflowKeys,
    queue: str,
    node: int,
    attempt: int,
    event: bytes,
    kind: schema.Outcome,
    decrement_key: str,
    decrement_head: bytes,
    decrement_tail: bytes,
    wake: bytes,
    grace_ms: int,
    catch_up_after: str,
    catch_up_count: int,
    finalizer: bool,
    result_field: str,
    result_blob: bytes,
    quiet_reaches: int,
    counter: int | str,
    quiet_below: int,
    msg_id: str,
    unless: str = "",
) -> Call:
    """``outcome.lua``: record the one outcome of an attempt (and its decrement), unless
    the index has the key ``unless`` (a signal node's signal)."""
    return Call(
        "outcome",
        [wf.log, wf.idx, wf.archive, wf.wake_due, wf.results, queue],
        [
            node,
            attempt,
            event,
            kind.value,
            decrement_key,
            decrement_head,
            wake,
            grace_ms,
            catch_up_after,
            catch_up_count,
            decrement_tail,
            _flag(finalizer),
            result_field,
            result_blob,
            quiet_reaches,
            counter,
            quiet_below,
            msg_id,
            unless,
        ],
    )


def apply(
    *,
    wf: WorkflowKeys,
    trigger_queue: str,
    decided: Decisions,
    expected: int,
    trigger_msg_id: str,
    trigger_wake: bytes,
    grace_ms: int,
    archive_wake: bytes,
    archive_inline: int,
    done: bool,
    folded_seq: int,
    folded_id: str,
    guard_key: str = "",
    guard_seq: int = 0,
    guard_sha1: str = "",
) -> Call:
    """``apply.lua``: apply one cause's decisions (a chunk of them) and acknowledge."""
    keys = [
        wf.log,
        wf.idx,
        wf.archive,
        wf.active,
        wf.wake_due,
        trigger_queue or wf.log,
        wf.expiry,
        wf.ended,
    ]
    argv = [
        wf.workflow_id,
        expected,
        trigger_msg_id,
        trigger_wake,
        wf.done_channel,
        grace_ms,
        archive_wake,
        decided.total,
        archive_inline,
        _flag(done),
        folded_seq,
        folded_id,
        guard_key,
        guard_seq,
        guard_sha1,
    ]
    return Call("apply", keys + decided.queue_keys, argv + decided.slots)


def archive(*, wf: WorkflowKeys, length: int, data: bytes, archive_wake: bytes) -> Call:
    """``archive.lua``: replace a finished workflow's log of ``length`` by ``data``."""
    return Call(
        "archive",
        [wf.log, wf.idx, wf.archive, wf.active, wf.wake_due, wf.expiry, wf.ended],
        [wf.workflow_id, length, data, archive_wake],
    )


def rebuild(*, wf: WorkflowKeys, length: int, fields: Mapping[str, Any]) -> Call:
    """``rebuild.lua``: install an index rebuilt from a log of ``length``."""
    pairs: list[Any] = []
    for field, value in fields.items():
        pairs += [field, value]
    return Call("rebuild", [wf.log, wf.idx, wf.archive], [length, *pairs])


def expire(
    *,
    wf: WorkflowKeys,
    member: str,
    tombstone_ms: int,
    definitions: str,
    definition: str | None,
    def_hash: str,
) -> Call:
    """``expire.lua``: remove a finished workflow past its retention (``member``: its
    expiry set member; ``definition``: the key of its definition, if it has one)."""
    keys = [wf.archive, wf.results, wf.tombstone, wf.expiry, wf.log, wf.ended, wf.idx]
    keys += [definitions, wf.submitted]
    if definition is not None:
        keys.append(definition)
    return Call("expire", keys, [wf.workflow_id, member, tombstone_ms, def_hash])


def fail(*, wf: WorkflowKeys, failed: bytes) -> Call:
    """``fail.lua``: end a workflow that cannot go on (unreadable) as failed."""
    return Call(
        "fail",
        [wf.log, wf.idx, wf.archive, wf.active, wf.ended, wf.expiry],
        [wf.workflow_id, failed, wf.done_channel],
    )


def timer_move(*, delayed: str, stream: str, limit: int) -> Call:
    """``timer_move.lua``: move the due members of ``delayed`` into ``stream``."""
    return Call("timer_move", [delayed, stream], [limit])


def park(*, queue: str, parked: str, index: str, msg_id: str, message: bytes, entry: str) -> Call:
    """``park.lua``: set a paused actor's (or queue's) message aside, out of its queue."""
    return Call("park", [queue, parked, index], [msg_id, message, entry])


def unpark(*, parked: str, queue: str, index: str, limit: int, entry: str) -> Call:
    """``unpark.lua``: put parked messages back on their queue (and forget an emptied
    parked set)."""
    return Call("unpark", [parked, queue, index], [limit, entry])


def renew(*, queue: str, consumer: str, idle_ms: int, msg_ids: Sequence[str]) -> Call:
    """``renew.lua``: renew (or with a large ``idle_ms``, hand back) leases still ours."""
    return Call("renew", [queue], [consumer, idle_ms, *msg_ids])


def limit(
    *,
    limiter: str,
    limit: int,
    token: str,
    score_ms: int,
    cutoff_ms: int,
    ttl_ms: int,
    bucket_ms: int = 0,
) -> Call:
    """``limit.lua``: take a rate limiter's slot if one is free."""
    return Call("limit", [limiter], [limit, token, score_ms, cutoff_ms, ttl_ms, bucket_ms])


def beat(*, beats: str, consumer: str, forget_ms: int | None = None, leave: bool = False) -> Call:
    """``beat.lua``: this consumer is alive (or, with ``leave``, gone for good)."""
    return Call("beat", [beats], [consumer, "" if forget_ms is None else forget_ms, _flag(leave)])


def reclaim(
    *,
    stream: str,
    beats: str,
    group: str,
    suspect: str,
    consumer: str,
    dead_before: int,
    count: int,
) -> Call:
    """``reclaim.lua``: take over the pending messages of ``suspect`` if it is dead."""
    return Call("reclaim", [stream, beats], [group, suspect, consumer, dead_before, count])


def give_back(
    *, queue: str, beats: str, msg_id: str, owner: str, taken_ms: int, consumer: str
) -> Call:
    """``give_back.lua``: return a message taken over to its owner if it beats again
    (1), or tell one no longer held (2); 0: run it."""
    return Call("give_back", [queue, beats], [msg_id, owner, taken_ms, consumer])


def lone(
    *,
    wf: WorkflowKeys,
    queue: str,
    started: bytes,
    outcome: bytes,
    end: bytes,
    status: str,
    ran_ms: int,
    msg_id: str,
) -> Call:
    """``lone.lua``: end a lone task's workflow in one step, writing its archive."""
    return Call(
        "lone",
        [wf.log, wf.idx, wf.archive, wf.active, wf.expiry, queue],
        [wf.workflow_id, started, outcome, end, status, ran_ms, msg_id, wf.done_channel],
    )


def schedule_claim(
    *,
    schedule: str,
    pending: str,
    read: int,
    cursor: int,
    skipped: int,
    lease_ms: int,
    ticks: Sequence[str],
) -> Call:
    """``schedule_claim.lua``: move a schedule's cursor from ``read`` to ``cursor`` and
    hold ``ticks`` as pending (returns 0 if another process moved it first)."""
    return Call("schedule_claim", [schedule, pending], [read, cursor, skipped, lease_ms, *ticks])


def schedule_take(*, pending: str, lease_ms: int, limit: int) -> Call:
    """``schedule_take.lua``: the pending ticks whose lease is over, leased again."""
    return Call("schedule_take", [pending], [lease_ms, limit])


def schedule_done(
    *, schedule: str, pending: str, tick: str, workflow_id: str, tick_ms: str, outcome: str
) -> Call:
    """``schedule_done.lua``: a pending tick was submitted (``workflow_id``) or passed
    over (``''``, counted as ``outcome``: ``overlapped`` or ``failed``)."""
    return Call("schedule_done", [schedule, pending], [tick, workflow_id, tick_ms, outcome])


SCRIPTS = frozenset(
    {
        "schedule_claim",
        "schedule_take",
        "schedule_done",
        "beat",
        "reclaim",
        "give_back",
        "fail",
        "lone",
        "submit",
        "start",
        "results",
        "outcome",
        "apply",
        "archive",
        "rebuild",
        "expire",
        "timer_move",
        "park",
        "unpark",
        "renew",
        "limit",
    }
)
"""Every script; a test checks that each has its Lua file and each Lua file its wrapper."""
WRITES = frozenset(
    {"submit", "start", "outcome", "apply", "archive", "rebuild", "expire", "fail", "lone"}
)
"""Scripts that write a workflow's state (``durability="replicated"`` waits after them)."""
