"""Preparing a submission: a canvas compiled and checked, nothing written yet."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streamflow.api.canvas import Callback, Canvas, Message
from streamflow.api.compile import compile_canvas, message_arguments
from streamflow.api.shapes import Shapes
from streamflow.api.submit import Submission, check_budget, decided, submission_options
from streamflow.logs import get_logger
from streamflow.model.events import WorkflowSubmitted, encode_event
from streamflow.model.lone import is_lone
from streamflow.model.options import HistoryBudget
from streamflow.model.version import __version__

log = get_logger(__name__)


def prepare(
    canvas: Canvas,
    workflow_id: str | None,
    on_failure: Callback | None,
    retention: float | None,
    *,
    shapes: Shapes,
    retention_ms: int,
    budget: HistoryBudget | None,
    new_id: Callable[[], str],
    observe: Callable[[str, dict[str, Any]], None] | None = None,
    links: Mapping[str, Any] | None = None,
) -> Submission:
    """Compile and check a canvas, nothing written (see ``App.submit``); ``new_id``
    gives its id if ``workflow_id`` is None; ``observe`` is shown (and may add to) the
    options its ``WorkflowSubmitted`` records; ``links`` go into them too (what
    submitted it: a schedule's tick, say)."""
    if isinstance(canvas, Message) and on_failure is None:
        # One message (what send() makes): its shape compiled once, its arguments
        # encoded per call.
        definition, options, decisions = shapes.get(canvas, retention, retention_ms, budget)
        encoded = message_arguments(canvas)
        args = {} if encoded is None else {0: encoded}
    else:
        compiled = compile_canvas(canvas, on_failure=on_failure)
        definition, args = compiled.definition, compiled.args
        options = submission_options(definition, retention, retention_ms, budget)
        decisions = []
    if workflow_id is None:
        workflow_id = new_id()
    options = {**options, **(links or {})}
    if observe is not None:
        observe(workflow_id, options)
    submitted = WorkflowSubmitted(
        def_hash=definition.hash, args=args, options=options, engine_version=__version__
    )
    payload = encode_event(submitted)  # may raise EncodeError: before any write
    check_budget(budget, definition, payload)
    if not decisions:
        decisions = decided(definition, submitted)
    log.debug(
        "workflow_submitted",
        workflow_id=workflow_id,
        tasks=definition.task_count,
        def_hash=definition.hash,
    )
    lone = args.get(0, b"") if is_lone(definition, options, len(payload)) else None
    return Submission(workflow_id, definition, submitted, payload, decisions, lone)
