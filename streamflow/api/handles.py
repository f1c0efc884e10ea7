"""Handles on submitted workflows: status, results, history."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from streamflow.api.canvas import Canvas
from streamflow.api.compile import compile_canvas
from streamflow.model import codec, schema
from streamflow.model.archive import decode_archive
from streamflow.model.definition import Definition, Spec, TaskNode, assemble
from streamflow.model.errors import (
    ResultFailure,
    ResultMissing,
    ResultTimeout,
    WorkflowNotFoundError,
)
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
from streamflow.runtime.projector import Projector
from streamflow.store.connection import Store
from streamflow.store.log import parse_raw, read_history, read_many, read_raw


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
    client: Any
    results_key: str
    """Where results too large for the log are stored."""


class WorkflowHandle:
    """A submitted workflow: its status, its result, its history."""

    def __init__(self, store: Store, projector: Projector, workflow_id: str) -> None:
        self.store = store
        self.projector = projector
        self.id = workflow_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"

    def history(self) -> list[Entry]:
        """Every event, in order, from the live log or the archive.

        Raises:
            WorkflowNotFoundError: no such workflow (or it expired).
        """
        return read_history(self.store.client, self.store.keys, self.id)

    def snapshot(self) -> Snapshot:
        """Fold the workflow's log now (one round trip for an archived workflow or a
        short log, once its definition is known to this process).

        Raises:
            ResultMissing: no such workflow (``unknown``), or removed after its
                retention (``expired``).
        """
        try:
            raw, archived = read_raw(self.store.client, self.store.keys, self.id, self.store.reads)
        except WorkflowNotFoundError:
            expired = self.store.client.exists(self.store.keys.tombstone(self.id)) == 1
            raise ResultMissing(self.id, "expired" if expired else "unknown") from None
        return snapshot_of(self.store, self.id, raw, archived)

    def status(self) -> WorkflowStatus:
        """Where the workflow stands now: read from its index (a few fields per task,
        whatever the log's length), or once archived from its archive.

        Raises:
            ResultMissing: no such workflow (``unknown``), or removed after its
                retention (``expired``).
        """
        found = self._status_from_index()
        if found is not None:
            return found
        snap = self.snapshot()
        return WorkflowStatus(
            workflow_id=self.id,
            status=snap.state.status,
            counts=task_counts(snap.definition, snap.state),
            events=snap.state.n,
            archived=snap.archived,
            error=snap.state.end.get("error"),
            reason=snap.state.end.get("reason"),
        )

    def _status_from_index(self) -> WorkflowStatus | None:
        """The status the live index tells (None: no index, e.g. archived)."""
        client, keys = self.store.client, self.store.keys
        idx = keys.idx(self.id)
        head: Any = client.hmget(idx, [schema.STATUS, schema.LENGTH, schema.DEFINITION])
        if None in head:
            return None
        status, length = head[0].decode(), int(head[1])
        definition = self.store.definitions.get(head[2].decode(), self.id)
        tasks = [n.id for n in definition.nodes if isinstance(n, TaskNode)]
        fields = [
            f"{prefix}{node}"
            for node in tasks
            for prefix in (schema.RESULT, schema.FAILURE, schema.ATTEMPT, schema.DELIVERIES)
        ]
        values: Any = client.hmget(idx, fields)
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
            end_id: Any = client.hget(idx, schema.END)
            found: Any = client.xrange(keys.log(self.id), end_id, end_id) if end_id else []
            if not found:
                return None  # archived meanwhile: read from the archive
            event = to_entry(parse_raw(found)[0]).event
            if isinstance(event, WorkflowFailed):
                end["error"] = event.error
            elif isinstance(event, WorkflowCancelled):
                end["reason"] = event.reason
        return WorkflowStatus(
            workflow_id=self.id,
            status=status,
            counts=counts,
            events=length,
            archived=False,
            error=end.get("error"),
            reason=end.get("reason"),
        )

    def wait(self, timeout: float | None = None) -> Snapshot:
        """Block until the workflow ends: told by the App's one subscription to every
        workflow's end, not by polling; an ended workflow costs one read.

        Raises:
            ResultTimeout: it did not end within ``timeout`` seconds.
            ResultMissing: no such workflow.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # A Redis outage while waiting is ridden out (within the App's retry_for).
        return self.store.retrying(lambda: self._wait_once(deadline, timeout))

    def _wait_once(self, deadline: float | None, timeout: float | None) -> Snapshot:
        snap = self._if_ended()
        if snap is not None:
            return snap
        endings = self.store.endings
        ended = endings.watch(self.id)
        try:
            while True:
                # Watched first, then looked: an end between the two is not missed.
                ended.clear()
                snap = self._if_ended()
                if snap is not None:
                    return snap
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise ResultTimeout(self.id, timeout or 0)
                # Look again at least every few seconds: a notification is not durable
                # (lost if the connection drops), the log is.
                ended.wait(min(remaining or 5.0, 5.0))
        finally:
            endings.unwatch(self.id, ended)

    def _if_ended(self) -> Snapshot | None:
        """Its snapshot if it has ended, else None: one round trip (its status and its
        archive) unless it ended and is not archived yet; the whole log is read only
        once the index says it may have ended.

        Raises:
            ResultMissing: no such workflow (or it expired).
        """
        keys = self.store.keys
        status, archived = self.store.reads.execute(
            [("HGET", keys.idx(self.id), schema.STATUS), ("GET", keys.archive(self.id))]
        )
        for reply in (status, archived):
            if isinstance(reply, Exception):
                raise reply
        if archived is not None:
            return snapshot_of(self.store, self.id, decode_archive(archived), True)
        if status is not None and status.decode() not in TERMINAL_STATUSES:
            return None
        snap = self.snapshot()  # ended (not archived yet), or no index: look at the log
        return snap if snap.state.terminal else None

    def _read(self, block: bool, timeout: float | None) -> Snapshot:
        snap = self.wait(timeout) if block else self.snapshot()
        if not snap.state.terminal:
            raise ResultMissing(self.id, "not finished")
        return snap

    def get_result(
        self, *, block: bool = False, timeout: float | None = None, raise_on_error: bool = True
    ) -> Any:
        """The workflow's result: its top-level canvas's value, assembled from the log.

        Args:
            block: wait for the workflow to end (else raise ResultMissing if it has not).
            timeout: with ``block``, seconds to wait at most (None: forever).
            raise_on_error: if False, a failed workflow returns its ResultFailure
                instead of raising it.

        Raises:
            ResultMissing: not finished (without ``block``), unknown or expired.
            ResultTimeout: not finished within ``timeout``.
            ResultFailure: it failed or was cancelled (unless ``raise_on_error=False``).
        """
        snap = self._read(block, timeout)
        return value_of(self.id, snap, snap.definition.root_spec, raise_on_error)

    def result(self, timeout: float | None = None) -> Any:
        """Block until the workflow ends and return its result (see ``get_result``)."""
        return self.get_result(block=True, timeout=timeout)

    def cancel(self, reason: str = "") -> bool:
        """Cancel the workflow: records WorkflowCancelled once, enqueues nothing more;
        running tasks see ``current_task().cancelled`` (async ones are cancelled).

        Returns False if it had already ended.
        """
        cancelled: bool = self.projector.cancel(self.id, reason)
        return cancelled

    def completed(self) -> bool:
        """Whether it has completed successfully (so far: it may still be running)."""
        return self.snapshot().state.status == COMPLETED

    def results_by_part(
        self, canvas: Canvas, *, block: bool = False, timeout: float | None = None
    ) -> list[Any]:
        """The result of each top-level step (of a chain) or member (of a group) of the
        canvas this workflow was submitted with, in order (what ``pipeline.get_results``
        returns).

        Raises:
            ResultMissing: not finished (without ``block``), unknown or expired.
            ResultTimeout: not finished within ``timeout``.
            ResultFailure: it failed or was cancelled.
        """
        snap = self._read(block, timeout)
        value_of(self.id, snap, None, raise_on_error=True)
        found = values(snap)
        return [assemble(part.spec, found) for part in compile_canvas(canvas).parts]

    def parts_completed(self, canvas: Canvas) -> int:
        """How many top-level steps or members of ``canvas`` (as in ``results_by_part``)
        have every task succeeded."""
        results = self.snapshot().state.results
        return sum(1 for part in compile_canvas(canvas).parts if part.tasks <= results.keys())

    def partial_results(self) -> Any:
        """Every task's value so far, in canvas shape (a chain as the list of its steps,
        None where a task has not finished, a Failure where it failed for good)."""
        snap = self.snapshot()
        return assemble(snap.definition.full_spec, _WithNone(values(snap)))


def snapshot_of(store: Store, workflow_id: str, raw: list[RawEntry], archived: bool) -> Snapshot:
    """Workflow ``workflow_id``'s fold of ``raw``, with its definition.

    Raises:
        ResultMissing: the log does not start with its submission (``unknown``).
    """
    state = fold_all([to_entry(item) for item in raw])
    if not state.def_hash:
        raise ResultMissing(workflow_id, "unknown")
    return Snapshot(
        state,
        store.definitions.get(state.def_hash, workflow_id),
        archived,
        store.client,
        store.keys.results(workflow_id),
    )


def value_of(workflow_id: str, snap: Snapshot, spec: Spec, raise_on_error: bool) -> Any:
    """An ended workflow's value at ``spec``, or its failure (raised, or returned)."""
    if snap.state.status != COMPLETED:
        error = snap.state.end.get("error") or {"reason": snap.state.end.get("reason", "")}
        failure = ResultFailure(workflow_id, snap.state.status, error)
        if raise_on_error:
            raise failure
        return failure
    return assemble(spec, values(snap))


RESULTS_CHUNK = 500
"""Workflows read per round trip by ``read_results``."""


def read_results(
    store: Store,
    handles: Sequence[WorkflowHandle],
    *,
    block: bool,
    timeout: float | None,
    raise_on_error: bool,
) -> list[Any]:
    """Each handle's result, in order: ended workflows read ``RESULTS_CHUNK`` per round
    trip, the others one by one as ``get_result`` reads them (``timeout`` for all)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    out: list[Any] = [None] * len(handles)
    later: list[int] = []
    for start in range(0, len(handles), RESULTS_CHUNK):
        chunk = handles[start : start + RESULTS_CHUNK]
        reads = read_many(store.client, store.keys, [handle.id for handle in chunk])
        for i, (handle, read) in enumerate(zip(chunk, reads, strict=True), start):
            snap = None if read is None else snapshot_of(store, handle.id, *read)
            if snap is None or not snap.state.terminal:
                later.append(i)
                continue
            out[i] = value_of(handle.id, snap, snap.definition.root_spec, raise_on_error)
    for i in later:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        out[i] = handles[i].get_result(block=block, timeout=left, raise_on_error=raise_on_error)
    return out


def values(snap: Snapshot) -> dict[int, Any]:
    """Each finished task's value: its result, or a Failure if it failed for good."""
    found: dict[int, Any] = dict(snap.state.results)
    refs = {node: v.field for node, v in found.items() if isinstance(v, OutOfLine)}
    if refs:
        blobs: Any = snap.client.hmget(snap.results_key, list(refs.values()))
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


class _WithNone(dict[int, Any]):
    def __missing__(self, key: int) -> None:
        return None
