"""Handles on submitted workflows: status, results, history (the synchronous face; the
reading itself is ``streamflow.api.reads``'s plans)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

from streamflow.api.canvas import Canvas
from streamflow.api.compile import compile_canvas
from streamflow.api.follow import follow, follow_plan
from streamflow.api.reads import (
    Snapshot,
    WorkflowStatus,
    completed_parts,
    ended_values_plan,
    finished,
    history_plan,
    if_ended_plan,
    partial_plan,
    snapshot_plan,
    status_plan,
    value_plan,
    values_plan,
)
from streamflow.model.children import attached_children
from streamflow.model.definition import assemble
from streamflow.model.errors import ResultTimeout
from streamflow.model.events import Entry
from streamflow.model.schema import COMPLETED
from streamflow.runtime.cancel import cancel
from streamflow.runtime.projector import Projector
from streamflow.store.connection import Store
from streamflow.store.plan import Plan, run

__all__ = ["Snapshot", "WorkflowHandle", "WorkflowStatus", "read_results"]

T = TypeVar("T")
R = TypeVar("R")
"""A handle's result type."""


class WorkflowHandle(Generic[R]):
    """A submitted workflow: its status, its result, its history (typed
    ``WorkflowHandle[R]``: ``result()`` returns an ``R``, where the canvas says)."""

    def __init__(self, store: Store, projector: Projector, workflow_id: str) -> None:
        self.store = store
        self.projector = projector
        self.id = workflow_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"

    def _run(self, plan: Plan[T]) -> T:
        return run(plan, self.store.reads.execute)

    def history(self) -> list[Entry]:
        """Every event, in order, from the live log or the archive.

        Raises:
            WorkflowNotFoundError: no such workflow (or it expired).
        """
        return self._run(history_plan(self.store, self.id))

    def events(self, after: int = 0) -> Iterator[Entry]:
        """The workflow's events as they are appended, from the one after sequence number
        ``after`` (0: from the first); ends once the workflow has ended and its log is
        archived. The same events ``history`` returns, read by a blocking read on the
        workflow's own stream (on a connection of its own, given back at the end).

        Raises:
            ResultMissing: no such workflow (``unknown``), or removed (``expired``).
        """
        wire = self.store.wire()
        try:
            plan = follow_plan(self.store, self.id, after)
            yield from follow(plan, self.store.reads.execute, wire.execute)
        finally:
            wire.close()

    def snapshot(self) -> Snapshot:
        """Fold the workflow's log now (one round trip for an archived workflow or a
        short log, once its definition is known to this process).

        Raises:
            ResultMissing: no such workflow (``unknown``), or removed after its
                retention (``expired``).
        """
        return self._run(snapshot_plan(self.store, self.id))

    def status(self) -> WorkflowStatus:
        """Where the workflow stands now: read from its index (a few fields per task,
        whatever the log's length), or once archived from its archive.

        Raises:
            ResultMissing: no such workflow (``unknown``), or removed after its
                retention (``expired``).
        """
        return self._run(status_plan(self.store, self.id))

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
        snap = self._run(if_ended_plan(self.store, self.id))
        if snap is not None:
            return snap
        endings = self.store.endings
        ended = endings.watch(self.id)
        try:
            while True:
                # Watched first, then looked: an end between the two is not missed.
                ended.clear()
                snap = self._run(if_ended_plan(self.store, self.id))
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

    def _read(self, block: bool, timeout: float | None) -> Snapshot:
        return finished(self.id, self.wait(timeout) if block else self.snapshot())

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
        return self._run(value_plan(self.id, snap, snap.definition.root_spec, raise_on_error))

    def result(self, timeout: float | None = None) -> R:
        """Block until the workflow ends and return its result (see ``get_result``)."""
        result: R = self.get_result(block=True, timeout=timeout)
        return result

    def cancel(self, reason: str = "") -> bool:
        """Cancel the workflow: records WorkflowCancelled once, enqueues nothing more;
        running tasks see ``current_task().cancelled`` (async ones are cancelled); its
        child workflows (``Child`` nodes, and tasks' children not started detached)
        are cancelled too.

        Returns False if it had already ended.
        """
        cancelled = cancel(self.projector, self.id, reason)
        if cancelled:  # its child workflows too (their own cancel reaches theirs)
            for child in attached_children(self.snapshot().state):
                WorkflowHandle(self.store, self.projector, child).cancel(reason)
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
        self._run(value_plan(self.id, snap, None, raise_on_error=True))
        found = self._run(values_plan(snap))
        return [assemble(part.spec, found) for part in compile_canvas(canvas).parts]

    def parts_completed(self, canvas: Canvas) -> int:
        """How many top-level steps or members of ``canvas`` (as in ``results_by_part``)
        have every task succeeded."""
        return completed_parts(self.snapshot(), canvas)

    def partial_results(self) -> Any:
        """Every task's value so far, in canvas shape (a chain as the list of its steps,
        None where a task has not finished, a Failure where it failed for good)."""
        return self._run(partial_plan(self.store, self.id))


def read_results(
    store: Store,
    handles: Sequence[WorkflowHandle[Any]],
    *,
    block: bool,
    timeout: float | None,
    raise_on_error: bool,
) -> list[Any]:
    """Each handle's result, in order: ended workflows read many per round trip
    (``ended_values_plan``), the others one by one as ``get_result`` reads them
    (``timeout`` for all)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    ids = [handle.id for handle in handles]
    found = run(ended_values_plan(store, ids, raise_on_error), store.execute)
    out = [value for _, value in found]
    later = [i for i, (ended, _) in enumerate(found) if not ended]
    for i in later:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        out[i] = handles[i].get_result(block=block, timeout=left, raise_on_error=raise_on_error)
    return out
