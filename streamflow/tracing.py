"""OpenTelemetry traces, the extra ``streamflow[otel]`` (opentelemetry-api; the
application picks and configures the SDK and its exporter).

``instrument(app)`` makes one trace per workflow: a ``streamflow submit`` span where it
is submitted, then a span per task attempt (``streamflow task <actor>``), in whichever
process runs it. The submit span's context is recorded in the workflow's
``WorkflowSubmitted`` event (its options' ``trace``, as W3C trace-context headers), so a
worker in another process reads it there and its task spans join the submitter's trace.
Retries, barrier releases and the workflow's end are events of the span of the attempt
that caused them. A sync actor's body runs inside its span: spans it makes are its
children.

A worker reads a workflow's trace context once (the first entry of its log, one round
trip) and keeps it for the workflow's later tasks.
"""

from __future__ import annotations

import collections
import contextvars
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streamflow.model.events import (
    BarrierReleased,
    Event,
    TaskFailed,
    TaskSucceeded,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowSubmitted,
    decode_event,
)
from streamflow.model.schema import EVENT_FIELD
from streamflow.model.version import __version__
from streamflow.runtime.jobs import Job
from streamflow.runtime.observe import Observer, outcome_of
from streamflow.store.connection import Store

if TYPE_CHECKING:
    from streamflow.api.app import App

try:
    from opentelemetry import context, propagate, trace
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "streamflow's traces need opentelemetry-api: pip install 'streamflow[otel]'"
    ) from exc

TRACE_OPTION = "trace"
"""The key of ``WorkflowSubmitted.options`` holding the submit span's context."""
CARRIERS_KEPT = 4096
"""Workflows whose trace context a process keeps (the least recently used go first)."""
_ENDS = {WorkflowCompleted: "completed", WorkflowFailed: "failed", WorkflowCancelled: "cancelled"}


class Tracing(Observer):
    """Spans of one process's submissions and task attempts, made by ``tracer``."""

    def __init__(self, store: Store, tracer: trace.Tracer) -> None:
        self.store = store
        self.tracer = tracer
        self._lock = threading.Lock()
        self._submits: dict[str, trace.Span] = {}
        self._attempts: dict[int, tuple[trace.Span, contextvars.Token[context.Context] | None]] = {}
        """Open task spans by ``id(job)``, with the context token of a sync body's."""
        self._carriers: collections.OrderedDict[str, dict[str, str]] = collections.OrderedDict()
        self._recording = threading.local()
        """The job whose outcome this thread is recording (its decisions follow)."""

    # -- submissions ------------------------------------------------------------------

    def submitting(self, workflow_id: str, options: dict[str, Any]) -> None:
        span = self.tracer.start_span(
            "streamflow submit",
            kind=trace.SpanKind.PRODUCER,
            attributes={"streamflow.workflow_id": workflow_id},
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        options[TRACE_OPTION] = carrier
        with self._lock:
            self._submits[workflow_id] = span
            self._keep(workflow_id, carrier)

    def workflows_submitted(self, workflow_ids: Sequence[str]) -> None:
        for span in self._submit_spans(workflow_ids):
            span.end()

    def submit_failed(self, workflow_ids: Sequence[str], error: BaseException) -> None:
        for span in self._submit_spans(workflow_ids):
            span.record_exception(error)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}"))
            span.end()

    def _submit_spans(self, workflow_ids: Sequence[str]) -> list[trace.Span]:
        with self._lock:
            spans = [self._submits.pop(workflow_id, None) for workflow_id in workflow_ids]
        return [span for span in spans if span is not None]

    # -- task attempts ----------------------------------------------------------------

    def task_started(self, job: Job) -> None:
        parent = propagate.extract(self._carrier(job.workflow_id))
        span = self.tracer.start_span(
            f"streamflow task {job.actor.name}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "streamflow.workflow_id": job.workflow_id,
                "streamflow.node": job.node,
                "streamflow.attempt": job.attempt,
                "streamflow.actor": job.actor.name,
                "streamflow.queue": job.task.options.queue,
            },
        )
        # A sync body runs in this thread, to its end: its spans are the attempt's
        # children. (An async one runs on the event loop, not here.)
        token = None if job.actor.is_async else context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._attempts[id(job)] = (span, token)

    def task_ended(self, job: Job, event: TaskSucceeded | TaskFailed, duration_s: float) -> None:
        opened = self._attempts.get(id(job))
        if opened is None:
            return
        span, _ = opened
        outcome = outcome_of(event)
        span.set_attribute("streamflow.outcome", outcome)
        if isinstance(event, TaskFailed):
            error = event.error
            span.add_event(
                "exception",
                {"exception.type": error["type"], "exception.message": error["message"]},
            )
            span.set_status(trace.Status(trace.StatusCode.ERROR, error["type"]))
            if event.retry_delay_ms is not None:
                span.add_event(
                    "retry scheduled",
                    {
                        "streamflow.next_attempt": job.attempt + 1,
                        "streamflow.delay_ms": event.retry_delay_ms,
                    },
                )
        self._recording.job = job

    def decided(self, workflow_id: str, decisions: Sequence[Event]) -> None:
        job: Job | None = getattr(self._recording, "job", None)
        opened = None if job is None else self._attempts.get(id(job))
        if job is None or opened is None or job.workflow_id != workflow_id:
            return
        span, _ = opened
        for decision in decisions:
            if isinstance(decision, BarrierReleased):
                targets = job.definition.nodes[decision.barrier]
                span.add_event(
                    "barrier released",
                    {
                        "streamflow.barrier": decision.barrier,
                        "streamflow.targets": list(getattr(targets, "targets", ())),
                    },
                )
            elif type(decision) in _ENDS:
                span.add_event(f"workflow {_ENDS[type(decision)]}")

    def task_recorded(self, job: Job) -> None:
        self._recording.job = None
        with self._lock:
            opened = self._attempts.pop(id(job), None)
        if opened is None:
            return
        span, token = opened
        if token is not None:
            context.detach(token)
        span.end()

    # -- trace contexts -----------------------------------------------------------------

    def _carrier(self, workflow_id: str) -> dict[str, str]:
        """The workflow's trace context: known here, else read from its log's first
        entry (none: its tasks start traces of their own)."""
        with self._lock:
            carrier = self._carriers.get(workflow_id)
            if carrier is not None:
                self._carriers.move_to_end(workflow_id)
                return carrier
        carrier = {}
        entries: Any = self.store.client.xrange(self.store.keys.log(workflow_id), count=1)
        if entries:
            first = decode_event(entries[0][1][EVENT_FIELD.encode()])
            if isinstance(first, WorkflowSubmitted):
                carrier = dict(first.options.get(TRACE_OPTION) or {})
        with self._lock:
            self._keep(workflow_id, carrier)
        return carrier

    def _keep(self, workflow_id: str, carrier: dict[str, str]) -> None:
        self._carriers[workflow_id] = carrier
        if len(self._carriers) > CARRIERS_KEPT:
            self._carriers.popitem(last=False)


def instrument(app: App, tracer_provider: trace.TracerProvider | None = None) -> Tracing:
    """Trace ``app``'s submissions and its workers' task attempts with
    ``tracer_provider`` (default: OpenTelemetry's global one); returns the observer."""
    tracer = trace.get_tracer("streamflow", __version__, tracer_provider=tracer_provider)
    tracing = Tracing(app.store, tracer)
    app.observers.add(tracing)
    return tracing
