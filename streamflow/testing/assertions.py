"""Assertions on workflow histories, for tests: the contract's invariants hold, and replay
re-derives every decision.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from streamflow.history.audit import audit, replay
from streamflow.model.definition import BarrierNode, Definition
from streamflow.model.events import BarrierReleased, Entry, TaskEnqueued, WorkflowSubmitted
from streamflow.model.schema import COMPLETED
from streamflow.model.state import fold_all
from streamflow.testing.records import known_definition


def _definition(history: Sequence[Entry], definition: Any) -> Definition:
    """The definition given, an App's (fetched by hash), or one the simulator ran."""
    if isinstance(definition, Definition):
        return definition
    first = history[0].event if history else None
    if not isinstance(first, WorkflowSubmitted):
        raise ValueError(f"a history starts with WorkflowSubmitted (got {first!r})")
    if definition is not None:  # an App
        found: Definition = definition.definitions.find(first.def_hash, range(definition.shards))
        return found
    known = known_definition(first.def_hash)
    if known is None:
        raise ValueError(
            f"definition {first.def_hash} was not simulated in this process: "
            "pass definition= (a Definition or the App that submitted the workflow)"
        )
    return known


def _describe(entries: Sequence[Entry], seq: int) -> str:
    for entry in entries:
        if entry.seq == seq:
            return repr(entry.event)
    return "(no such event)"


def assert_audit_clean(history: Sequence[Entry], definition: Any = None) -> None:
    """Assert that ``audit`` finds no violation and ``replay`` no divergence in a history.

    Args:
        history: a workflow's events (``SimResult.history``, ``app.history(id)``, or
            ``import_jsonl``'s entries).
        definition: its ``Definition``, or the ``App`` that submitted it; by default the
            definition the simulator ran.

    Raises:
        AssertionError: listing each violation and divergence with the event at fault.
    """
    d = _definition(history, definition)
    lines = [
        f"  violation {v.invariant} at seq {v.seq}: {v.detail} - {_describe(history, v.seq)}"
        for v in audit(history, d)
    ]
    lines += [
        f"  divergence at seq {x.seq}: {x.key} is not re-derived from its cause seq {x.cause}"
        f" - {_describe(history, x.seq)}"
        for x in replay(history, d)
    ]
    if lines:
        raise AssertionError(f"history of {len(history)} events is not clean:\n" + "\n".join(lines))


def assert_released_once(history: Sequence[Entry], definition: Any = None) -> None:
    """Assert that each barrier released at most once and each attempt was enqueued at
    most once (contract item 2); in a completed workflow, every barrier exactly once.

    Args:
        history: a workflow's events.
        definition: as for ``assert_audit_clean``.

    Raises:
        AssertionError: naming each barrier and attempt at fault.
    """
    d = _definition(history, definition)
    releases = collections.Counter(
        e.event.barrier for e in history if isinstance(e.event, BarrierReleased)
    )
    enqueues = collections.Counter(
        (e.event.node, e.event.attempt) for e in history if isinstance(e.event, TaskEnqueued)
    )
    problems = [f"  barrier {b} released {n} times" for b, n in releases.items() if n > 1]
    problems += [
        f"  node {node} attempt {attempt} enqueued {n} times"
        for (node, attempt), n in enqueues.items()
        if n > 1
    ]
    if fold_all(history).status == COMPLETED:
        problems += [
            f"  barrier {n.id} never released in a completed workflow"
            for n in d.nodes
            if isinstance(n, BarrierNode) and n.id not in releases
        ]
    if problems:
        raise AssertionError("contract item 2 broken:\n" + "\n".join(problems))
