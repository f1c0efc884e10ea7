"""Lone tasks: a workflow of one task that may end in one step.

A worker runs a lone task's body as soon as it reads its message, without recording its
start first, and then ends the workflow in one script that writes its archive: the log
gets the same five events as any one-task workflow (submitted, enqueued, started, the
outcome, the end). That holds only where nothing else could be decided: one task,
nothing piped in, no callback, and a history budget the five events cannot reach. The
queue message of such a task carries its arguments (``messages.encode_task_message``),
so the worker needs no read before the body runs.
"""

from __future__ import annotations

from typing import Any

from streamflow.model.definition import NONE, Definition, TaskNode

LONE_EVENTS = 5
"""What a lone task's workflow logs: submitted, enqueued, started, the outcome, the end."""
LONE_RESULT_BYTES = 16 * 1024
"""The largest encoded outcome a lone task ends with in one step (else the ordinary way)."""
_SLACK_BYTES = 1024
"""More than the enqueue, the start and the end encode to."""


def is_lone(definition: Definition, options: dict[str, Any], submitted_bytes: int) -> bool:
    """Whether a workflow of ``definition``, submitted with ``options`` in
    ``submitted_bytes`` encoded bytes, is a lone task."""
    nodes = definition.nodes
    if len(nodes) != 1 or not isinstance(nodes[0], TaskNode) or nodes[0].finalizer:
        return False
    if nodes[0].signal is not None or nodes[0].child:  # never ended by one run of a body
        return False
    if "parent" in options:  # a child workflow: its end is told to its parent
        return False
    if nodes[0].pipe != NONE:  # something piped in (an empty group's [] before it)
        return False
    budget = options.get("history")
    if not budget:
        return True
    warn_events, warn_bytes, _, _ = budget
    return bool(
        warn_events > LONE_EVENTS
        and warn_bytes > submitted_bytes + LONE_RESULT_BYTES + _SLACK_BYTES
    )
