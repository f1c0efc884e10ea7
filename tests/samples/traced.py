"""A worker process of ``tests.samples.observed``'s actors, traced: its spans go to the
OpenTelemetry SDK's in-memory exporter and are written as JSON to ``$TRACES_FILE`` when
the process exits. ``inner`` makes a span of its own inside its body."""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamflow import App
from streamflow.tracing import instrument
from tests.samples.observed import actors

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
app = App(os.environ["STREAMFLOW_REDIS_URL"])
actors(app)
instrument(app, provider)


@app.actor
def inner() -> None:
    with provider.get_tracer("tests").start_as_current_span("inner work"):
        pass


def as_data(span: ReadableSpan) -> dict[str, object]:
    """A finished span as plain data (ids in hex, as the tests compare them)."""
    assert span.context is not None
    return {
        "name": span.name,
        "trace_id": trace.format_trace_id(span.context.trace_id),
        "span_id": trace.format_span_id(span.context.span_id),
        "parent_id": trace.format_span_id(span.parent.span_id) if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "events": [[event.name, dict(event.attributes or {})] for event in span.events],
        "status": span.status.status_code.name,
    }


@atexit.register
def dump() -> None:
    spans = [as_data(span) for span in exporter.get_finished_spans()]
    Path(os.environ["TRACES_FILE"]).write_text(json.dumps(spans))
