"""Reading a workflow: its snapshot, status, history and results, as plans
(``streamflow.store.plan``) that both faces of a handle carry out, the synchronous one on
a held connection and the asyncio one on an event loop's."""

from __future__ import annotations

import dataclasses
from typing import Any

from streamflow.api.canvas import Canvas
from streamflow.api.compile import compile_canvas
from streamflow.model import codec, schema
from streamflow.model.archive import decode_archive
from streamflow.model.definition import Definition, Spec, TaskNode, assemble
from streamflow.model.errors import ResultFailure, ResultMissing, WorkflowNotFoundError
from streamflow.model.events import (
    Entry,
    OutOfLine,
    RawEntry,
    WorkflowCancelled,
    WorkflowFailed,
    to_entry,
)
from streamflow.model.failures import Failure
from streamflow.model.schema import CANCELLED, COMPLETED, FAILED, TERMINAL_STATUSES
from streamflow.model.state import State, count_tasks, fold_all, task_counts
from streamflow.store.connection import Store
from streamflow.store.log import many_plan, parse_raw, raw_plan
from streamflow.store.plan import Plan, checked, one


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowStatus:
    """A small summary of a workflow, folded from its log."""

    workflow_id: str
    status: str
    """``running``, ``completed``, ``failed`` or ``cancelled``."""
    counts: dict[str, int]
    """Tasks per state: ``waiting``, ``queued``, ``running``, ``succeeded``, ``failed``."""
    events: int
    """Length of the log."""
    archived: bool
    error: dict[str, Any] | None = None
    """The failure, for a failed workflow."""
    reason: str | None = None
    """Why it was cancelled, for a cancelled one."""

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def failed(self) -> bool:
        return self.status in (FAILED, CANCELLED)


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """A workflow's fold and definition, read once."""

    state: State
    definition: Definition
    archived: bool
    results_key: str
    """Where results too large for the log are stored."""


def history_plan(store: Store, workflow_id: str) -> Plan[list[Entry]]:
    """Every event, in order, from the live log or the archive.

    Raises:
        WorkflowNotFoundError: no such workflow (or it expired).
    """
    raw, _ = yield from raw_plan(store.keys, workflow_id)
    return [to_entry(item) for item in raw]


def snapshot_plan(store: Store, workflow_id: str) -> Plan[Snapshot]:
    """The workflow's fold now (one round trip for an archived workflow or a short log,
    once its definition is known to this process).

    Raises:
        ResultMissing: no such workflow (``unknown``), or removed after its retention
            (``expired``).
    """
    try:
        raw, archived = yield from raw_plan(store.keys, workflow_id)
    except WorkflowNotFoundError:
        expired = (yield from one(("EXISTS", store.keys.tombstone(workflow_id)))) == 1
        raise ResultMissing(workflow_id, "expired" if expired else "unknown") from None
    return (yield from snapshot_of(store, workflow_id, raw, archived))


def snapshot_of(
    store: Store, workflow_id: str, raw: list[RawEntry], archived: bool
) -> Plan[Snapshot]:
    """Workflow ``workflow_id``'s fold of ``raw``, with its definition.

    Raises:
        ResultMissing: the log does not start with its submission (``unknown``).
    """
    state = fold_all([to_entry(item) for item in raw])
    if not state.def_hash:
        raise ResultMissing(workflow_id, "unknown")
    definition = yield from store.definitions.get_plan(state.def_hash, workflow_id)
    return Snapshot(state, definition, archived, store.keys.results(workflow_id))


def if_ended_plan(store: Store, workflow_id: str) -> Plan[Snapshot | None]:
    """Its snapshot if it has ended, else None: one round trip (its status and its
    archive) unless it ended and is not archived yet; the whole log is read only once
    the index says it may have ended.

    Raises:
        ResultMissing: no such workflow (or it expired).
    """
    keys = store.keys
    status, archived = yield [
        ("HGET", keys.idx(workflow_id), schema.STATUS),
        ("GET", keys.archive(workflow_id)),
    ]
    if checked(archived) is not None:
        return (yield from snapshot_of(store, workflow_id, decode_archive(archived), True))
    if checked(status) is not None and status.decode() not in TERMINAL_STATUSES:
        return None
    snap = yield from snapshot_plan(store, workflow_id)  # ended, not archived yet; or no index
    return snap if snap.state.terminal else None


def status_plan(store: Store, workflow_id: str) -> Plan[WorkflowStatus]:
    """Where the workflow stands now: read from its index (a few fields per task,
    whatever the log's length), or once archived from its archive.

    Raises:
        ResultMissing: no such workflow (``unknown``), or removed after its retention
            (``expired``).
    """
    found = yield from _status_from_index(store, workflow_id)
    if found is not None:
        return found
    snap = yield from snapshot_plan(store, workflow_id)
    return WorkflowStatus(
        workflow_id=workflow_id,
        status=snap.state.status,
        counts=task_counts(snap.definition, snap.state),
        events=snap.state.n,
        archived=snap.archived,
        error=snap.state.end.get("error"),
        reason=snap.state.end.get("reason"),
    )


def _status_from_index(store: Store, workflow_id: str) -> Plan[WorkflowStatus | None]:
    """The status the live index tells (None: no index, e.g. archived)."""
    keys = store.keys
    idx = keys.idx(workflow_id)
    head = yield from one(("HMGET", idx, schema.STATUS, schema.LENGTH, schema.DEFINITION))
    if None in head:
        return None
    status, length = head[0].decode(), int(head[1])
    definition = yield from store.definitions.get_plan(head[2].decode(), workflow_id)
    tasks = [n.id for n in definition.nodes if isinstance(n, TaskNode)]
    fields = [
        f"{prefix}{node}"
        for node in tasks
        for prefix in (schema.RESULT, schema.FAILURE, schema.ATTEMPT, schema.DELIVERIES)
    ]
    values = (yield from one(("HMGET", idx, *fields))) if fields else []
    rows = {node: values[4 * i : 4 * i + 4] for i, node in enumerate(tasks)}
    counts = count_tasks(
        definition,
        succeeded={node for node, row in rows.items() if row[0] is not None},
        failed={node for node, row in rows.items() if row[1] is not None},
        enqueued={node for node, row in rows.items() if row[2] is not None},
        started={node for node, row in rows.items() if row[3] and int(row[3])},
    )
    end: dict[str, Any] = {}
    if status in TERMINAL_STATUSES:
        end_id = yield from one(("HGET", idx, schema.END))
        found = (
            (yield from one(("XRANGE", keys.log(workflow_id), end_id, end_id))) if end_id else []
        )
        if not found:
            return None  # archived meanwhile: read from the archive
        event = to_entry(parse_raw(found)[0]).event
        if isinstance(event, WorkflowFailed):
            end["error"] = event.error
        elif isinstance(event, WorkflowCancelled):
            end["reason"] = event.reason
    return WorkflowStatus(
        workflow_id=workflow_id,
        status=status,
        counts=counts,
        events=length,
        archived=False,
        error=end.get("error"),
        reason=end.get("reason"),
    )


def value_plan(workflow_id: str, snap: Snapshot, spec: Spec, raise_on_error: bool) -> Plan[Any]:
    """An ended workflow's value at ``spec``, or its failure (raised, or returned)."""
    if snap.state.status != COMPLETED:
        error = snap.state.end.get("error") or {"reason": snap.state.end.get("reason", "")}
        failure = ResultFailure(workflow_id, snap.state.status, error)
        if raise_on_error:
            raise failure
        return failure
    return assemble(spec, (yield from values_plan(snap)))


RESULTS_CHUNK = 500
"""Workflows read per round trip by ``App.results``."""


def ended_values_plan(
    store: Store, workflow_ids: list[str], raise_on_error: bool
) -> Plan[list[tuple[bool, Any]]]:
    """For each workflow, read ``RESULTS_CHUNK`` per round trip: (True, its value) if it
    has ended, else (False, None): wait for those one by one.

    Raises:
        ResultFailure: one failed (unless not ``raise_on_error``: then it is the value).
    """
    out: list[tuple[bool, Any]] = []
    reads: list[tuple[list[RawEntry], bool] | None] = []
    for start in range(0, len(workflow_ids), RESULTS_CHUNK):
        reads += yield from many_plan(store.keys, workflow_ids[start : start + RESULTS_CHUNK])
    for workflow_id, read in zip(workflow_ids, reads, strict=True):
        snap = None if read is None else (yield from snapshot_of(store, workflow_id, *read))
        if snap is None or not snap.state.terminal:
            out.append((False, None))
            continue
        spec = snap.definition.root_spec
        out.append((True, (yield from value_plan(workflow_id, snap, spec, raise_on_error))))
    return out


def finished(workflow_id: str, snap: Snapshot) -> Snapshot:
    """``snap``, if the workflow has ended.

    Raises:
        ResultMissing: it has not.
    """
    if not snap.state.terminal:
        raise ResultMissing(workflow_id, "not finished")
    return snap


def values_plan(snap: Snapshot) -> Plan[dict[int, Any]]:
    """Each finished task's value: its result, or a Failure if it failed for good."""
    found: dict[int, Any] = dict(snap.state.results)
    refs = {node: v.field for node, v in found.items() if isinstance(v, OutOfLine)}
    if refs:
        blobs = yield from one(("HMGET", snap.results_key, *refs.values()))
        for node, blob in zip(refs, blobs, strict=True):
            found[node] = codec.decode(blob)
    for node, error in snap.state.failures.items():
        task = snap.definition.task(node)
        found[node] = Failure(
            actor=task.actor,
            node=node,
            attempt=snap.state.attempt.get(node, 1),
            type=str(error.get("type", "")),
            message=str(error.get("message", "")),
            traceback=str(error.get("traceback", "")),
        )
    return found


def partial_plan(store: Store, workflow_id: str) -> Plan[Any]:
    """Every task's value so far, in canvas shape (None where a task has not finished,
    a Failure where it failed for good)."""
    snap = yield from snapshot_plan(store, workflow_id)
    return assemble(snap.definition.full_spec, _WithNone((yield from values_plan(snap))))


class _WithNone(dict[int, Any]):
    def __missing__(self, key: int) -> None:
        return None


def completed_parts(snap: Snapshot, canvas: Canvas) -> int:
    """How many top-level steps or members of ``canvas`` have every task succeeded."""
    results = snap.state.results
    return sum(1 for part in compile_canvas(canvas).parts if part.tasks <= results.keys())
