"""What resuming a failed workflow re-runs (``WorkflowResumed``): the nodes of the
canvas that failed for good, and those the end cut short (enqueued, never finished);
every node that succeeded keeps its result and never runs again."""

from __future__ import annotations

from streamflow.model.decide import HISTORY_LIMIT_EXCEEDED
from streamflow.model.definition import TASK, Definition, TaskNode
from streamflow.model.schema import FAILED
from streamflow.model.state import State

UNREADABLE = "UnreadableWorkflow"
"""``error["type"]`` of a workflow failed because its log or definition could not be
read (it cannot be resumed: no fold decides for it)."""


def not_resumable(state: State) -> str | None:
    """Why a workflow in ``state`` cannot be resumed, or None if it can."""
    if state.status != FAILED:
        return f"only a failed workflow can be resumed (this one is {state.status})"
    kind = state.end.get("error", {}).get("type")
    if kind == UNREADABLE:
        return "its log or definition could not be read: nothing can decide for it"
    if kind == HISTORY_LIMIT_EXCEEDED:
        return "its history is over its budget: it would fail again at once"
    return None


def resume_nodes(definition: Definition, state: State) -> dict[int, int]:
    """Task node -> the attempt it runs again with: each task of the canvas that was
    reached and is not done (no result, and no final failure it was allowed)."""
    nodes: dict[int, int] = {}
    for node in definition.nodes:
        if not isinstance(node, TaskNode) or node.role != TASK:
            continue
        attempt = state.attempt.get(node.id)
        if attempt is None or node.id in state.results:
            continue
        if node.id in state.failures and node.allow_failure:
            continue
        nodes[node.id] = attempt + 1
    return nodes
