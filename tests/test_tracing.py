"""OpenTelemetry traces (``streamflow[otel]``): a workflow submitted here and run by a
worker process is one trace; its task spans, made in that process, are children of the
submit span made here, found through the context recorded in WorkflowSubmitted. Both
processes export to the SDK's in-memory exporter (imported in the test: the settings of
scripts/test whose venvs lack the extra still collect, and deselect, this module)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streamflow import App, Chain, Group
from tests.helpers import stop, worker_process
from tests.samples.observed import actors


def test_a_workflow_is_one_trace_across_processes(app: App, redis_url: str, tmp_path: Path) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from streamflow.tracing import TRACE_OPTION, instrument

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(app, provider)
    run = actors(app)
    inner = app.actor(lambda: None, actor_name="inner")
    step, flaky = run["step"], run["flaky"]

    log, traces = tmp_path / "worker.log", tmp_path / "traces.json"
    process = worker_process(
        "tests.samples.traced:app", redis_url, log, env={"TRACES_FILE": str(traces)}
    )
    try:
        chain = app.submit(
            Chain(
                step.message("a"), Group(step.message("b"), flaky.message("c")), step.message("d")
            )
        )
        nested = inner.send()
        assert chain.result(timeout=30) == "d"
        nested.result(timeout=30)
    finally:
        stop(process, log)

    # Here: a submit span per workflow, its context recorded in the workflow's log.
    submits = {s.attributes["streamflow.workflow_id"]: s for s in exporter.get_finished_spans()}
    assert sorted(submits) == sorted([chain.id, nested.id])
    assert all(s.name == "streamflow submit" for s in submits.values())
    recorded = app.history(chain.id)[0].event.options[TRACE_OPTION]
    assert recorded["traceparent"].split("-")[1:3] == [
        trace.format_trace_id(submits[chain.id].context.trace_id),
        trace.format_span_id(submits[chain.id].context.span_id),
    ]

    # There: a span per task attempt, each a child of the submit span.
    spans: list[dict[str, Any]] = json.loads(traces.read_text())
    submit = submits[chain.id].context
    tasks = [s for s in spans if s["trace_id"] == trace.format_trace_id(submit.trace_id)]
    assert sorted(
        (s["attributes"]["streamflow.node"], s["attributes"]["streamflow.attempt"]) for s in tasks
    ) == [
        (0, 1),
        (2, 1),
        (3, 1),
        (3, 2),
        (5, 1),
    ]
    assert {s["parent_id"] for s in tasks} == {trace.format_span_id(submit.span_id)}
    by_node = {
        (s["attributes"]["streamflow.node"], s["attributes"]["streamflow.attempt"]): s
        for s in tasks
    }
    assert by_node[(0, 1)]["name"] == "streamflow task step"
    assert by_node[(0, 1)]["attributes"]["streamflow.workflow_id"] == chain.id

    # The failed attempt: an error, with the retry it scheduled as an event.
    first_try = by_node[(3, 1)]
    assert first_try["status"] == "ERROR"
    assert [name for name, _ in first_try["events"]] == ["exception", "retry scheduled"]
    assert first_try["events"][1][1]["streamflow.next_attempt"] == 2
    assert by_node[(3, 2)]["status"] == "UNSET"

    # Each barrier released once, on the span of the attempt whose outcome released it.
    released = [
        (key, attributes["streamflow.barrier"])
        for key, span in by_node.items()
        for name, attributes in span["events"]
        if name == "barrier released"
    ]
    released_by = {barrier: key for key, barrier in released}
    assert len(released) == len(released_by) == 2
    assert released_by[1] == (0, 1)
    assert released_by[4] in ((2, 1), (3, 2))
    assert [n for n, _ in by_node[(5, 1)]["events"]] == ["workflow completed"]

    # A sync body's own spans are children of its attempt's.
    nested_trace = trace.format_trace_id(submits[nested.id].context.trace_id)
    mine = {s["name"]: s for s in spans if s["trace_id"] == nested_trace}
    assert mine["inner work"]["parent_id"] == mine["streamflow task inner"]["span_id"]
