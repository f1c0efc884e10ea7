"""What a process tells about its work as it happens (its submissions, its workers'
tasks and decisions), for whatever counts or traces it: the stats kept in Redis
(``runtime.tally``), Prometheus metrics (``streamflow.metrics``) and OpenTelemetry spans
(``streamflow.tracing``).

An observer is told in the thread that does the work, so each method must be quick; one
that raises is logged and otherwise ignored: it never changes what the process does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from streamflow.logs import get_logger
from streamflow.model.events import Event, TaskFailed, TaskSucceeded
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
    """Told of a process's work. Every method is optional."""

    def submitting(self, workflow_id: str, options: dict[str, Any]) -> None:
        """A workflow is about to be submitted with ``options`` (recorded in its
        ``WorkflowSubmitted``; an observer may add to them, under a key of its own)."""

    def workflows_submitted(self, workflow_ids: Sequence[str]) -> None:
        """This process submitted these workflows (lone tasks among them)."""

    def submit_failed(self, workflow_ids: Sequence[str], error: BaseException) -> None:
        """Submitting these raised ``error`` (nothing may have been written)."""

    def task_started(self, job: Job) -> None:
        """A job's body is about to run (after its start was recorded)."""

    def task_ended(self, job: Job, event: TaskSucceeded | TaskFailed, duration_s: float) -> None:
        """A job's body ran ``duration_s``; its outcome is about to be recorded."""

    def decided(self, workflow_id: str, decisions: Sequence[Event]) -> None:
        """This process applied ``decisions`` to a workflow (in the thread recording the
        outcome that caused them, when one did)."""

    def task_recorded(self, job: Job) -> None:
        """A job's outcome was recorded (or recording it failed): the job is over here."""

    def workflow_ended(self, workflow_id: str, status: str) -> None:
        """This process recorded a workflow's end (``completed``, ``failed``,
        ``cancelled``)."""

    def redis_error(self, where: str) -> None:
        """A Redis command failed (``where``: the part of the worker that sent it)."""

    def dead_lettered(self, queue: str, reason: str) -> None:
        """This process put a message of ``queue`` (the queue's name) on the dead-letter
        stream, for ``reason``."""


class Observers(Observer):
    """Tells each of ``observers``; one that raises is logged, never raised."""

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self.observers: list[Observer] = []
        self._told: dict[str, list[Callable[..., None]]] = {}
        """Per method, the observers' own versions (one left as the base's no-op is
        not called: a worker's hot path pays for what is observed only)."""
        for observer in observers:
            self.add(observer)

    def add(self, observer: Observer) -> None:
        self.observers.append(observer)
        for method in _METHODS:
            if getattr(type(observer), method) is not getattr(Observer, method):
                self._told.setdefault(method, []).append(getattr(observer, method))

    def listening(self) -> dict[str, int]:
        """How many observers each method tells (those that override it)."""
        return {method: len(told) for method, told in self._told.items()}

    @contextlib.contextmanager
    def submission(self, workflow_ids: Sequence[str]) -> Iterator[None]:
        """Around the writes of these workflows: tells ``workflows_submitted``, or
        ``submit_failed`` with what the writes raised (re-raised)."""
        try:
            yield
        except BaseException as exc:
            self.submit_failed(workflow_ids, exc)
            raise
        self.workflows_submitted(workflow_ids)

    def submitting(self, workflow_id: str, options: dict[str, Any]) -> None:
        self._tell("submitting", workflow_id, options)

    def workflows_submitted(self, workflow_ids: Sequence[str]) -> None:
        self._tell("workflows_submitted", workflow_ids)

    def submit_failed(self, workflow_ids: Sequence[str], error: BaseException) -> None:
        self._tell("submit_failed", workflow_ids, error)

    def task_started(self, job: Job) -> None:
        self._tell("task_started", job)

    def task_ended(self, job: Job, event: TaskSucceeded | TaskFailed, duration_s: float) -> None:
        self._tell("task_ended", job, event, duration_s)

    def decided(self, workflow_id: str, decisions: Sequence[Event]) -> None:
        self._tell("decided", workflow_id, decisions)

    def task_recorded(self, job: Job) -> None:
        self._tell("task_recorded", job)

    def workflow_ended(self, workflow_id: str, status: str) -> None:
        self._tell("workflow_ended", workflow_id, status)

    def redis_error(self, where: str) -> None:
        self._tell("redis_error", where)

    def dead_lettered(self, queue: str, reason: str) -> None:
        self._tell("dead_lettered", queue, reason)

    def _tell(self, method: str, *args: object) -> None:
        for told in self._told.get(method, ()):
            try:
                told(*args)
            except Exception:
                observer = type(getattr(told, "__self__", told)).__name__
                log.exception("observer_failed", observer=observer, method=method)


_METHODS = [name for name in vars(Observer) if not name.startswith("_")]
