"""Resuming a failed workflow: WorkflowResumed recorded with what it decides, as a plan
both faces of the App carry out (``App.resume``, ``App.resume_async``).

The nodes that failed for good, and those the end cut short, run again (their retries
counted afresh); every result is kept, so a node that succeeded never runs again. An
archived workflow is reopened first: its log and index restored as they were, in the
same script (the archive is checked unchanged since it was read).
"""

from __future__ import annotations

import hashlib
from typing import Any

from streamflow.logs import get_logger
from streamflow.model import schema
from streamflow.model.archive import decode_archive
from streamflow.model.decide import decide_all, finished
from streamflow.model.definition import Definition
from streamflow.model.errors import ResumeError, ScriptError
from streamflow.model.events import Entry, Event, RawEntry, WorkflowResumed, to_entry
from streamflow.model.index import index_fields
from streamflow.model.messages import encode_wake
from streamflow.model.resume import not_resumable, resume_nodes
from streamflow.model.state import State, fold, fold_all
from streamflow.runtime.projector import (
    MAX_ROUNDS,
    Applied,
    Projector,
    Trigger,
    chunked,
    split_first,
)
from streamflow.store import scripts
from streamflow.store.decisions import slots_of
from streamflow.store.log import log_plan
from streamflow.store.plan import Plan, checked, clock_ms, run
from streamflow.store.scripts import Reply, reply_code

log = get_logger(__name__)


def resume_plan(
    projector: Projector, workflow_id: str, reason: str, by: str
) -> Plan[tuple[Applied, dict[int, int]]]:
    """Record WorkflowResumed and what it decides; what it applied (for
    ``Projector.settle``) and the nodes it re-runs (node -> attempt).

    Raises:
        ResumeError: the workflow is unknown, or not failed (or failed unreadable).
        ScriptError: it did not settle (endless conflicts).
    """
    keys = projector.store.keys
    wf = keys.workflow(workflow_id)
    for _ in range(MAX_ROUNDS):
        (stored, clock) = yield [("GET", wf.archive), ("TIME",)]
        stored = checked(stored)
        raw: list[RawEntry] = decode_archive(stored) if stored is not None else []
        if stored is None:
            raw = yield from log_plan(keys, workflow_id)
        if not raw:
            raise ResumeError(f"no workflow {workflow_id!r} (unknown, or expired)")
        entries = [to_entry(item) for item in raw]
        state = fold_all(entries)
        refused = not_resumable(state)
        if refused:
            raise ResumeError(f"cannot resume {workflow_id}: {refused}")
        definition = yield from projector.store.definitions.get_plan(state.def_hash, workflow_id)
        call, decisions, nodes, done = _resume_call(
            projector,
            workflow_id,
            definition,
            (raw, entries),
            state,
            stored,
            clock_ms(clock),
            reason,
            by,
        )
        first, rest = split_first(decisions)
        wake = Trigger("", "", encode_wake(workflow_id, schema.resumed_key(state.epoch)))
        if rest:  # if this stops between chunks, recovery decides the rest
            due = clock_ms(clock) + projector.recovery_grace_ms
            yield [("ZADD", wf.wake_due, due, wake.wake_member)]
        (reply_raw,) = yield [call]
        reply = reply_code(checked(reply_raw))
        if reply is Reply.REBUILD:
            yield from projector.rebuild_plan(workflow_id)
            continue
        if reply is not Reply.OK:
            continue  # it changed (or was archived) since it was read: read it again
        ended = bool(int(reply_raw[4]))
        if rest:
            more = yield from _rest(projector, workflow_id, definition, rest, reply_raw, wake, done)
            ended = ended or more
        log.info("workflow_resumed", workflow_id=workflow_id, nodes=sorted(nodes), by=by)
        return Applied(first + rest, False, ended, done), nodes
    raise ScriptError(f"resuming {workflow_id} did not settle in {MAX_ROUNDS} rounds")


def _resume_call(
    projector: Projector,
    workflow_id: str,
    definition: Definition,
    read: tuple[list[RawEntry], list[Entry]],
    state: State,
    stored: bytes | None,
    now_ms: int,
    reason: str,
    by: str,
) -> tuple[Any, list[Event], dict[int, int], bool]:
    """The resume script's call for a workflow ``read`` (its entries as stored and
    decoded) from its archive ``stored`` (restored as it is) or its live log; its
    decisions, the nodes it re-runs, and whether it is finished once they are in."""
    store = projector.store
    raw, entries = read
    fields = index_fields(state, definition) if stored is not None else {}
    nodes = resume_nodes(definition, state)
    folded, expected = (state.n, state.last_id), state.last_decision
    resumed = WorkflowResumed(epoch=state.epoch + 1, nodes=nodes, reason=reason, by=by)
    entry = Entry(seq=state.n + 1, stream_id=f"{now_ms}-0", event=resumed)
    # All the log implies, not only the resumed nodes: a projection the failure cut
    # short (its worker died, and the recovery found the workflow ended) is made now.
    decisions: list[Event] = [
        resumed,
        *decide_all(definition, fold(state, entry), [*entries, entry]),
    ]
    done = finished(definition, state, decisions)
    retention = int(state.options.get("retention_ms", 0))
    call = scripts.resume(
        wf=store.keys.workflow(workflow_id),
        archive_sha1=(
            hashlib.sha1(stored, usedforsecurity=False).hexdigest() if stored is not None else ""
        ),
        expected=expected,
        folded_seq=folded[0],
        folded_id=folded[1],
        expiry_member=schema.expiry_member(workflow_id, state.def_hash, retention),
        restore=[(sid, payload, seq) for sid, seq, payload in raw] if stored is not None else [],
        fields=fields,
        bases={node: attempt - 1 for node, attempt in nodes.items()},
        decided=slots_of(
            store.keys, workflow_id, definition, split_first(decisions)[0], {entry.seq: now_ms}
        ),
    )
    return call, decisions, nodes, done


def _rest(
    projector: Projector,
    workflow_id: str,
    definition: Definition,
    rest: list[Event],
    reply_raw: Any,
    wake: Trigger,
    done: bool,
) -> Plan[bool]:
    """Decisions past the resume script's chunk, applied like a projection's (the
    workflow is running again); whether they ended it. The last chunk cancels the
    wake-up scheduled before the first."""
    expected, ended = int(reply_raw[2]), False
    chunks = chunked(rest)
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        trigger = wake if last else None
        call = projector.apply_call(
            workflow_id, definition, chunk, {}, expected, (0, "0-0"), trigger, done and last
        )
        (raw,) = yield [call]
        if reply_code(checked(raw)) is not Reply.OK:
            return ended  # recovery (the wake-up) decides what is left
        expected, ended = int(raw[2]), ended or bool(int(raw[4]))
    return ended


def resume(projector: Projector, workflow_id: str, reason: str, by: str) -> dict[int, int]:
    """``resume_plan`` carried out on this thread; the nodes it re-runs."""
    applied, nodes = run(resume_plan(projector, workflow_id, reason, by), projector.store.execute)
    resumed_settle(projector, workflow_id, applied)
    return nodes


def resumed_settle(
    projector: Projector, workflow_id: str, applied: Applied, archive: bool = True
) -> None:
    """After ``resume_plan``: drop any cached fold of the workflow's failed state (the
    log was reopened), and settle what it applied."""
    projector.folds.forget(workflow_id)
    projector.settle(workflow_id, *applied, archive=archive)
