"""The scripts' declared interfaces: one typed wrapper per Lua file in ``lua/``.

Each wrapper shares its script's name, takes its KEYS and ARGV as keyword arguments named
as the script's header names them, and returns a ``Call`` for ``Scripts.run`` or
``Scripts.batch`` (``streamflow.store.runner``). Only these functions put arguments in
the positions a script reads them from; every key a script touches arrives in KEYS.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from streamflow.model import schema
from streamflow.store.calls import Call as Call
from streamflow.store.calls import flag
from streamflow.store.decisions import Decisions
from streamflow.store.keys import WorkflowKeys
from streamflow.store.queue_scripts import (
    beat as beat,
)
from streamflow.store.queue_scripts import (
    give_back as give_back,
)
from streamflow.store.queue_scripts import (
    limit as limit,
)
from streamflow.store.queue_scripts import (
    park as park,
)
from streamflow.store.queue_scripts import (
    reclaim as reclaim,
)
from streamflow.store.queue_scripts import (
    renew as renew,
)
from streamflow.store.queue_scripts import (
    schedule_claim as schedule_claim,
)
from streamflow.store.queue_scripts import (
    schedule_done as schedule_done,
)
from streamflow.store.queue_scripts import (
    schedule_take as schedule_take,
)
from streamflow.store.queue_scripts import (  # re-exported: callers use scripts.<name>
    timer_move as timer_move,
)
from streamflow.store.queue_scripts import (
    unpark as unpark,
)


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
            flag(finalizer),
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
            flag(finalizer),
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
        flag(done),
        folded_seq,
        folded_id,
        guard_key,
        guard_seq,
        guard_sha1,
    ]
    return Call("apply", keys + decided.queue_keys, argv + decided.slots)


def resume(
    *,
    wf: WorkflowKeys,
    archive_sha1: str,
    expected: int,
    folded_seq: int,
    folded_id: str,
    expiry_member: str,
    restore: Sequence[tuple[str, bytes, int]],
    fields: Mapping[str, Any],
    bases: Mapping[int, int],
    decided: Decisions,
) -> Call:
    """``resume.lua``: reopen a failed workflow (restored from its archive, whose SHA-1
    is ``archive_sha1``, if it was archived) and append WorkflowResumed and its
    decisions."""
    argv: list[Any] = [
        wf.workflow_id,
        archive_sha1,
        expected,
        folded_seq,
        folded_id,
        expiry_member,
        len(restore),
    ]
    for stream_id, payload, seq in restore:
        argv += [stream_id, payload, seq]
    argv.append(len(fields))
    for field, value in fields.items():
        argv += [field, value]
    argv.append(len(bases))
    for node, base in bases.items():
        argv += [node, base]
    argv += [decided.total, *decided.slots]
    keys = [wf.log, wf.idx, wf.archive, wf.active, wf.expiry, wf.ended]
    return Call("resume", keys + decided.queue_keys, argv)


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


def note(*, wf: WorkflowKeys, key: str, event: bytes) -> Call:
    """``note.lua``: append an event of note (no decision) once, by its key."""
    return Call("note", [wf.log, wf.idx, wf.archive], [key, event])


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


WRITES = frozenset(
    {"submit", "start", "outcome", "apply", "resume", "lone", "note"}  # append events
    | {"archive", "rebuild", "expire", "fail"}  # replace or remove a log, end one
)
"""Scripts that write a workflow's state (``durability="replicated"`` waits after them)."""
SCRIPTS = WRITES | {
    "results",
    "schedule_claim",
    "schedule_take",
    "schedule_done",
    "beat",
    "reclaim",
    "give_back",
    "timer_move",
    "park",
    "unpark",
    "renew",
    "limit",
}
"""Every script; a test checks that each has its Lua file and each Lua file its wrapper."""
