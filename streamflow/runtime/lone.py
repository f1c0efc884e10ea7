"""Lone tasks in a worker (``model.lone``): the body runs as soon as the message is read;
the start is recorded only if the task runs long (by the watch, after ``QUICK_S``) or
its end cannot be written in one step; a quick success ends its workflow in one script
(``lone.lua``), which writes the archive of the five events at once."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from streamflow.logs import get_logger
from streamflow.model.errors import DecodeError, DefinitionError
from streamflow.model.events import (
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCompleted,
    encode_event,
)
from streamflow.model.lone import LONE_RESULT_BYTES
from streamflow.model.schema import COMPLETED
from streamflow.runtime.jobs import Job
from streamflow.store import scripts
from streamflow.store.connection import Store
from streamflow.store.scripts import Reply, reply_code

log = get_logger(__name__)

QUICK_S = 0.2
"""A lone task that runs (or waits for a thread) longer has its start recorded."""
OUTCOME_SEQ = 4
"""A lone task's outcome is its log's fourth event."""


class Lone:
    """Records the starts of lone tasks that run long, and ends quick ones in one step.

    Args:
        store: the worker's Redis.
        name: the worker's consumer name (recorded in TaskStarted).
        ended: called with the workflow id and its status once one ended here.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        ended: Callable[[str, str], None],
        unreadable: Callable[[str, str, bytes, str, Exception], None],
    ) -> None:
        self.store = store
        self.name = name
        self.ended = ended
        self.unreadable = unreadable

    def finish(
        self, job: Job, event: TaskSucceeded | TaskFailed, record: Callable[[], None]
    ) -> None:
        """End ``job``'s workflow in one step, or ``record`` its outcome the ordinary way
        (its start recorded first). A log or definition found unreadable on the way ends
        the workflow as failed, and the message is a dead letter (as at a start)."""
        try:
            if not self.end(job, event, job.blob):
                record()
        except (DecodeError, DefinitionError) as exc:
            self.unreadable(job.queue_key, job.msg_id, job.data, job.workflow_id, exc)

    def record_slow(self, jobs: list[Job]) -> None:
        """Record the start of every lone job among ``jobs`` held longer than
        ``QUICK_S`` whose body has not ended."""
        now = time.monotonic()
        slow = [j for j in jobs if j.lone and not j.start_recorded and now - j.started > QUICK_S]
        if slow:
            self._record_starts(slow, running_only=True)

    def end(self, job: Job, event: TaskSucceeded | TaskFailed, blob: bytes) -> bool:
        """End ``job``'s workflow in one step, if it can be; returns False when its
        outcome must be recorded the ordinary way (its start is then recorded first)."""
        with job.lock:
            job.ended = True
            one_step = not job.start_recorded
        if one_step and isinstance(event, TaskSucceeded) and not blob:
            outcome = encode_event(event)
            if len(outcome) <= LONE_RESULT_BYTES and self._one_step(job, outcome):
                return True
        if not job.start_recorded:
            self._record_starts([job], running_only=False)
        return False

    def _one_step(self, job: Job, outcome: bytes) -> bool:
        started = TaskStarted(
            node=job.node, attempt=job.attempt, worker=self.name, msg_id=job.msg_id
        )
        call = scripts.lone(
            wf=self.store.keys.workflow(job.workflow_id),
            queue=job.queue_key,
            started=encode_event(started),
            outcome=outcome,
            end=encode_event(WorkflowCompleted(cause=OUTCOME_SEQ)),
            status=COMPLETED,
            ran_ms=round((time.monotonic() - job.started) * 1000),
            msg_id=job.msg_id,
        )
        if reply_code(self.store.scripts.run(call)) is not Reply.OK:
            return False  # no longer as the submit left it: the ordinary way
        self.ended(job.workflow_id, COMPLETED)
        return True

    def _record_starts(self, jobs: list[Job], *, running_only: bool) -> None:
        """Record TaskStarted for ``jobs`` (one round trip); whatever the answer, their
        attempt then ends the ordinary way. ``running_only``: skip a job whose body has
        ended (its end records its start itself)."""
        held: list[Job] = []
        try:
            for job in jobs:
                job.lock.acquire()
                held.append(job)
            due = [j for j in held if not j.start_recorded and not (running_only and j.ended)]
            calls = [self._start_call(job) for job in due]
            for job, raw in zip(due, self.store.scripts.batch(calls), strict=True):
                if isinstance(raw, Exception):
                    log.warning("lone_start_failed", workflow_id=job.workflow_id, error=str(raw))
                    continue  # tried again: by the watch, or at the end
                # RUN: recorded. DUP, STALE, ALREADY_DONE, REBUILD: the attempt is no
                # longer this job's alone; the ordinary outcome path sorts it out.
                job.start_recorded = True
        finally:
            for job in held:
                job.lock.release()

    def _start_call(self, job: Job) -> scripts.Call:
        started = TaskStarted(
            node=job.node, attempt=job.attempt, worker=self.name, msg_id=job.msg_id
        )
        return scripts.start(
            wf=self.store.keys.workflow(job.workflow_id),
            queue=job.queue_key,
            node=job.node,
            attempt=job.attempt,
            msg_id=job.msg_id,
            started=encode_event(started),
            finalizer=False,
            catch_up_after="",
            catch_up_count=0,
            takeover=encode_event(dataclasses.replace(started, takeover=True)),
        )
