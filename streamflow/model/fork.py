"""Forks: a new workflow that re-runs one node of another and what follows from it, with
the same inputs, and keeps every other result (``App.fork_workflow``, ``streamflow resume
ID --from NODE``: Temporal's reset, DBOS's fork).

The kept results travel in the fork's ``WorkflowSubmitted`` (option ``fork``), so
``decide`` takes each as a decided success as soon as its node is reached (no message is
sent, nothing runs), as it takes a signal's payload: a fork's log replays like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamflow.model.definition import NONE, TASK, WORKFLOW_ON_FAILURE, Definition, TaskNode
from streamflow.model.events import OutOfLine
from streamflow.model.state import State

FORK = "fork"
"""The submission option of a fork: ``{"workflow_id", "node", "reason", "by",
"results": {node: [result, result_ref]}}``."""


def descendants(definition: Definition, node: int) -> set[int]:
    """``node`` and every task that follows from it: the targets of the barriers it
    feeds, all the way down, and the callbacks of each."""
    found: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        task = definition.task(current)
        stack += [
            c for c in (task.on_success, task.on_failure, task.on_retry_exhausted) if c != NONE
        ]
        if task.succ != NONE:
            stack += definition.barrier(task.succ).targets
    return found


def fork_refused(definition: Definition, state: State, node: int) -> str:
    """Why ``node`` cannot be forked from ('' if it can)."""
    if not state.def_hash:
        return "it has no submission in its log"
    tasks = [n.id for n in definition.nodes if isinstance(n, TaskNode) and n.role == TASK]
    if node not in tasks:
        return f"node {node} is not one of its tasks (its tasks: {tasks})"
    return ""


def kept_results(definition: Definition, state: State, node: int) -> dict[int, list[Any]]:
    """What a fork from ``node`` keeps: each success outside ``node``'s descendants, as
    ``[result, result_ref]`` (a result stored out of line is named by its ref)."""
    rerun = descendants(definition, node)
    kept: dict[int, list[Any]] = {}
    for done, value in state.results.items():
        if done in rerun or definition.task(done).role == WORKFLOW_ON_FAILURE:
            continue
        kept[done] = [None, value.field] if isinstance(value, OutOfLine) else [value, ""]
    return kept


def kept(state: State) -> dict[int, list[Any]]:
    """The results a fork keeps (empty for any other workflow)."""
    return kept_of(state.options)


def kept_of(options: Mapping[str, Any]) -> dict[int, list[Any]]:
    """The results a fork keeps, from its submission's options."""
    fork = options.get(FORK)
    return fork["results"] if fork else {}
