"""What a worker tells about its work as it happens, for whatever counts or traces it: the
stats kept in Redis (``runtime.tally``), Prometheus metrics (``runtime.metrics``) and
OpenTelemetry spans (``runtime.tracing``).

An observer is told in the thread that does the work, so each method must be quick; one
that raises is logged and otherwise ignored: it never changes what the worker does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from streamflow.logs import get_logger
from streamflow.model.events import TaskFailed, TaskSucceeded
from streamflow.runtime.jobs import Job

log = get_logger(__name__)


def outcome_of(event: TaskSucceeded | TaskFailed) -> str:
    """``succeeded``, ``retried`` (it failed and runs again) or ``failed`` (for good)."""
    if isinstance(event, TaskSucceeded):
        return "succeeded"
    return "failed" if event.retry_delay_ms is None else "retried"


def waited_s(job: Job) -> float:
    """How long the job's message waited in its queue before it started: from when Redis
    put it there (its id, by the Redis clock) to now (by this host's), at least 0."""
    queued_ms = int(job.msg_id.partition("-")[0])
    return max(0.0, time.time() - queued_ms / 1000)


class Observer:
    """Told of a worker's work. Every method is optional."""

    def workflows_submitted(self, count: int) -> None:
        """This process submitted ``count`` workflows (lone tasks among them)."""

    def task_started(self, job: Job) -> None:
        """A job's body is about to run (after its start was recorded)."""

    def task_ended(self, job: Job, event: TaskSucceeded | TaskFailed, duration_s: float) -> None:
        """A job's outcome is about to be recorded; its body ran ``duration_s``."""

    def workflow_ended(self, workflow_id: str, status: str) -> None:
        """This process recorded a workflow's end (``completed``, ``failed``,
        ``cancelled``)."""

    def redis_error(self, where: str) -> None:
        """A Redis command failed (``where``: the part of the worker that sent it)."""


class Observers(Observer):
    """Tells each of ``observers``; one that raises is logged, never raised."""

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self.observers = list(observers)

    def add(self, observer: Observer) -> None:
        self.observers.append(observer)

    def workflows_submitted(self, count: int) -> None:
        self._tell("workflows_submitted", count)

    def task_started(self, job: Job) -> None:
        self._tell("task_started", job)

    def task_ended(self, job: Job, event: TaskSucceeded | TaskFailed, duration_s: float) -> None:
        self._tell("task_ended", job, event, duration_s)

    def workflow_ended(self, workflow_id: str, status: str) -> None:
        self._tell("workflow_ended", workflow_id, status)

    def redis_error(self, where: str) -> None:
        self._tell("redis_error", where)

    def _tell(self, method: str, *args: object) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception:
                log.exception("observer_failed", observer=type(observer).__name__, method=method)
