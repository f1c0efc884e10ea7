"""Error reporting to Sentry, the extra ``streamflow[sentry]`` (sentry-sdk).

``instrument(app)`` reports each task that failed for good as one Sentry event: the
exception the body raised, with its traceback (or, for a failure no body raised, such
as a message too old to run, the recorded error), tagged with the workflow id, node,
actor, attempt and queue, and with the workflow's most recent events as breadcrumbs.
A failed attempt that is retried is not reported unless ``report_retries=True``.

The application initialises the SDK (``sentry_sdk.init(dsn=...)``) as usual, in the
worker processes; events go wherever that client sends them.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from streamflow.logs import get_logger
from streamflow.model.events import Event, TaskFailed, TaskSucceeded, decode_event
from streamflow.runtime.hooks import Hooks, TaskInfo
from streamflow.runtime.jobs import Job
from streamflow.runtime.observe import Observer, outcome_of
from streamflow.store.log import parse_raw

if TYPE_CHECKING:
    from streamflow.api.app import App

try:
    import sentry_sdk
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "streamflow's Sentry reporting needs sentry-sdk: pip install 'streamflow[sentry]'"
    ) from exc

log = get_logger(__name__)

BREADCRUMBS = 20
"""The workflow's most recent events attached to a report."""

_Key = tuple[str, int, int]


class SentryReporter(Hooks, Observer):
    """Reports a process's task failures to Sentry.

    As hooks, it keeps the exception a body raised (``after_task``); as an observer,
    it learns whether that failure is retried or final (``task_ended``, which follows
    in the same thread) and reports it then, so the event carries the real exception.
    """

    def __init__(self, app: App, *, report_retries: bool = False) -> None:
        self.app = app
        self.report_retries = report_retries
        self._lock = threading.Lock()
        self._raised: dict[_Key, BaseException] = {}
        """Exceptions bodies raised, until their attempt's outcome is known."""

    def after_task(
        self, task: TaskInfo, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is not None:
            with self._lock:
                self._raised[(task.workflow_id, task.node, task.attempt)] = exception

    def task_ended(self, job: Job, event: TaskSucceeded | TaskFailed, duration_s: float) -> None:
        exception = self._take(job)
        if not isinstance(event, TaskFailed):
            return
        outcome = outcome_of(event)
        if outcome == "retried" and not self.report_retries:
            return
        self.report(job, event, exception, outcome)

    def task_recorded(self, job: Job) -> None:
        self._take(job)  # a failure ``task_ended`` was not told of must not stay here

    def report(
        self, job: Job, event: TaskFailed, exception: BaseException | None, outcome: str
    ) -> None:
        """Send one event for this failed attempt."""
        tags = {
            "streamflow.workflow_id": job.workflow_id,
            "streamflow.node": str(job.node),
            "streamflow.actor": job.actor.name,
            "streamflow.attempt": str(job.attempt),
            "streamflow.queue": job.task.options.queue,
            "streamflow.outcome": outcome,
        }
        # An isolation scope of its own: the breadcrumbs this thread gathered so far
        # (e.g. the worker's own Redis commands, from the SDK's Redis integration) are
        # about other tasks; this event's are its workflow's events.
        crumbs = self.breadcrumbs(job.workflow_id)
        with sentry_sdk.isolation_scope() as scope:
            scope.clear_breadcrumbs()
            for tag, value in tags.items():
                scope.set_tag(tag, value)
            for crumb in crumbs:
                scope.add_breadcrumb(crumb)
            if exception is not None:
                event_id = sentry_sdk.capture_exception(exception)
            else:
                # No exception object (the task failed before or without its body): the
                # recorded error, its traceback as context, grouped by actor and type
                # rather than by its message.
                error = event.error
                scope.set_context("streamflow error", dict(error))
                scope.fingerprint = ["streamflow", job.actor.name, str(error.get("type"))]
                event_id = sentry_sdk.capture_message(
                    f"{error.get('type')}: {error.get('message')}", level="error"
                )
        log.debug(
            "failure_reported",
            event_id=event_id,
            **{name.removeprefix("streamflow."): value for name, value in tags.items()},
        )

    def breadcrumbs(self, workflow_id: str) -> list[dict[str, Any]]:
        """The workflow's last ``BREADCRUMBS`` events, oldest first (one XREVRANGE)."""
        try:
            raw = self.app.client.xrevrange(self.app.keys.log(workflow_id), count=BREADCRUMBS)
        except Exception:  # a report without breadcrumbs beats none
            log.warning("breadcrumbs_not_read", workflow_id=workflow_id, exc_info=True)
            return []
        crumbs = []
        for stream_id, seq, payload in reversed(parse_raw(raw)):
            event = decode_event(payload)
            data = crumb_data(event)
            crumbs.append(
                {
                    "category": "streamflow",
                    "message": f"#{seq} {type(event).__name__}",
                    "data": {"stream_id": stream_id, **data},
                    "timestamp": int(stream_id.partition("-")[0]) / 1000,
                }
            )
        return crumbs

    def _take(self, job: Job) -> BaseException | None:
        with self._lock:
            return self._raised.pop((job.workflow_id, job.node, job.attempt), None)


def crumb_data(event: Event) -> dict[str, Any]:
    """An event's fields for a breadcrumb: arguments and results are left out (they may
    be large or private), and of an error its type and message."""
    data: dict[str, Any] = {}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if field.name in ("args", "result"):
            continue
        if field.name == "error" and isinstance(value, dict):
            value = {key: value.get(key) for key in ("type", "message")}
        data[field.name] = value
    return data


def instrument(app: App, *, report_retries: bool = False) -> SentryReporter:
    """Report ``app``'s workers' task failures to Sentry (initialise the SDK yourself).

    Args:
        app: the App whose workers run the tasks.
        report_retries: also report failed attempts that are retried (by default only
            final failures are).

    Returns:
        The reporter, registered as the App's hooks and observer.
    """
    reporter = SentryReporter(app, report_retries=report_retries)
    app.add_hooks(reporter)
    app.observers.add(reporter)
    return reporter
