"""Child workflows' ids: derived from the parent node's attempt, so a redelivered run
of the node finds the child it started (see ``streamflow.api.children``)."""

from __future__ import annotations

import hashlib

from streamflow.model.messages import shard_of
from streamflow.model.state import State

MARK = "c0de"
"""How a child's id begins after its shard (``<shard>-c0de...``): an ended workflow
whose id does not is no child, and nothing is read to tell its parent."""


def child_workflow_id(parent: str, node: int, attempt: int, n: int = 0) -> str:
    """The id of the ``n``-th child an attempt of ``node`` starts (on its parent's
    shard): a ``Child`` node's run starts one (``n`` 0), a task may start several
    (``current_task().submit``, counted from 0 in each run)."""
    path = f"{parent}/{node}/{attempt}" + (f"/{n}" if n else "")
    digest = hashlib.sha256(path.encode()).hexdigest()
    return f"{shard_of(parent)}-{MARK}{digest[:20]}"


def attached_children(state: State) -> list[str]:
    """The children that cancelling the workflow cancels (all but detached ones)."""
    return [child for child, started in state.children.items() if not started.detached]
