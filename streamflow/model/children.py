"""Child workflows' ids: derived from the parent node's attempt, so a redelivered run
of the node finds the child it started (see ``streamflow.api.children``)."""

from __future__ import annotations

import hashlib

from streamflow.model.definition import Definition, TaskNode
from streamflow.model.messages import shard_of
from streamflow.model.state import State

MARK = "c0de"
"""How a child's id begins after its shard (``<shard>-c0de...``): an ended workflow
whose id does not is no child, and nothing is read to tell its parent."""


def child_workflow_id(parent: str, node: int, attempt: int) -> str:
    """The id of the child an attempt of ``node`` runs (on its parent's shard)."""
    digest = hashlib.sha256(f"{parent}/{node}/{attempt}".encode()).hexdigest()
    return f"{shard_of(parent)}-{MARK}{digest[:20]}"


def child_ids(workflow_id: str, definition: Definition, state: State) -> list[str]:
    """The ids of every child the workflow may have started (one per attempt of each
    child node it reached)."""
    return [
        child_workflow_id(workflow_id, node.id, attempt)
        for node in definition.nodes
        if isinstance(node, TaskNode) and node.child
        for attempt in range(1, state.attempt.get(node.id, 0) + 1)
    ]
