"""A workflow's DAG laid out for drawing: each node's state and position, and the edges
between them. The server computes the layout (layers by depth, left to right) so the page
only draws boxes and curves as inline SVG, with no front-end build step.

Tasks sit on even layers and barriers on odd ones: a root task is on layer 0, a barrier
one layer after the furthest of its sources, and its targets one layer after it. A
callback hangs two layers after the task it reports on, the workflow's ``on_failure``
two layers after the last one. Within a layer nodes keep canvas order (their ids).
"""

from __future__ import annotations

from typing import Any

from streamflow.model.definition import NONE, TASK, BarrierNode, Definition, TaskNode
from streamflow.model.schema import CANCELLED
from streamflow.model.state import State

MAX_NODES = 400
"""Nodes drawn at most (the first ones, in canvas order); a larger DAG says so."""
TASK_W, TASK_H = 160, 38
"""A task's box, in SVG units."""
BARRIER_R = 6
"""A barrier's dot radius."""
GAP, ROW_GAP = 40, 14
"""Space after each layer, and between two rows of one layer."""
STATES = ("pending", "enqueued", "running", "succeeded", "failed", "cancelled")
"""What a task's colour tells."""


def task_state(state: State, node: int) -> str:
    """One task's state, from the workflow's fold: ``succeeded`` or ``failed`` (for
    good) once it has an outcome; else ``cancelled`` if the workflow was; ``pending``
    before it is first enqueued, ``running`` once its current attempt started, else
    ``enqueued`` (waiting in its queue, or for a retry's backoff)."""
    if node in state.results:
        return "succeeded"
    if node in state.failures:
        return "failed"
    if state.status == CANCELLED:
        return "cancelled"
    if not state.attempt.get(node):
        return "pending"
    return "running" if state.deliveries.get(node) else "enqueued"


def layers(definition: Definition) -> dict[int, int]:
    """Each node's layer (see the module's docstring), found without recursion: a chain
    of thousands of steps is as deep as it is long."""
    nodes = definition.nodes
    layer: dict[int, int] = {}
    for start in range(len(nodes)):
        if start == definition.on_failure:
            continue
        stack = [start]
        while stack:
            node = nodes[stack[-1]]
            if node.id in layer:
                stack.pop()
                continue
            missing = [before for before in _waits_on(node) if before not in layer]
            if missing:
                stack += missing
                continue
            stack.pop()
            layer[node.id] = _layer_after(node, layer)
    if definition.on_failure != NONE:
        last = max(layer.values(), default=-2)
        layer[definition.on_failure] = last + 2 + last % 2
    return layer


def _waits_on(node: TaskNode | BarrierNode) -> tuple[int, ...]:
    """The nodes whose layers decide ``node``'s."""
    if isinstance(node, BarrierNode):
        return node.sources
    if node.role != TASK and node.subject != NONE:
        return (node.subject,)
    return () if node.pred == NONE else (node.pred,)


def _layer_after(node: TaskNode | BarrierNode, layer: dict[int, int]) -> int:
    """``node``'s layer, once those it waits on have theirs."""
    if isinstance(node, BarrierNode):
        return 1 + max((layer[source] for source in node.sources), default=-1)
    if node.role != TASK and node.subject != NONE:
        return layer[node.subject] + 2
    return 0 if node.pred == NONE else layer[node.pred] + 1


def edges(definition: Definition) -> list[tuple[int, int, str]]:
    """Every edge as (from, to, kind): ``flow`` into and out of barriers, ``callback``
    from a task to a callback reporting on it."""
    found: list[tuple[int, int, str]] = []
    for node in definition.nodes:
        if isinstance(node, BarrierNode):
            found += [(source, node.id, "flow") for source in node.sources]
            found += [(node.id, target, "flow") for target in node.targets]
        elif node.role != TASK and node.subject != NONE:
            found.append((node.subject, node.id, "callback"))
    return found


def layout(definition: Definition, state: State) -> dict[str, Any]:
    """The DAG for the page: ``nodes`` (id, kind, actor, state, x, y, w, h), ``edges``
    (from, to, kind), the drawing's ``width`` and ``height``, and ``truncated`` when it
    holds more than ``MAX_NODES`` nodes (only the first are drawn)."""
    layer = layers(definition)
    shown = [node for node in definition.nodes if node.id < MAX_NODES]
    widths: dict[int, int] = {}
    counts: dict[int, int] = {}
    for node in shown:
        at = layer[node.id]
        own = TASK_W if isinstance(node, TaskNode) else 2 * BARRIER_R
        widths[at] = max(widths.get(at, 0), own + GAP)
        counts[at] = counts.get(at, 0) + 1
    left, x = 0, {}
    for number in range(max(widths, default=-1) + 1):
        x[number] = left
        left += widths.get(number, 0)
    row_h = TASK_H + ROW_GAP
    tallest = max(counts.values(), default=0)
    rows: dict[int, int] = {}
    nodes: list[dict[str, Any]] = []
    for node in shown:
        at = layer[node.id]
        rows[at] = rows.get(at, 0) + 1
        # Layers with fewer nodes are centred on the tallest one.
        y = (rows[at] - 1) * row_h + (tallest - counts[at]) * row_h // 2
        nodes.append(_drawn(node, state, x[at], y))
    drawn = {node["id"] for node in nodes}
    return {
        "nodes": nodes,
        "edges": [
            {"from": a, "to": b, "kind": kind}
            for a, b, kind in edges(definition)
            if a in drawn and b in drawn
        ],
        "width": max(left - GAP, TASK_W),
        "height": max(tallest * row_h - ROW_GAP, 0),
        "truncated": len(definition.nodes) > len(shown),
        "states": list(STATES),
    }


def _drawn(node: TaskNode | BarrierNode, state: State, x: int, y: int) -> dict[str, Any]:
    """One node as the page draws it."""
    if isinstance(node, BarrierNode):
        released = node.id in state.released
        return {
            "id": node.id,
            "kind": "barrier",
            "state": "released" if released else "waiting",
            "x": x,
            "y": y + TASK_H // 2 - BARRIER_R,
            "w": 2 * BARRIER_R,
            "h": 2 * BARRIER_R,
        }
    return {
        "id": node.id,
        "kind": "task" if node.role == TASK else "callback",
        "actor": node.actor if node.signal is None else f"signal {node.signal}",
        "state": task_state(state, node.id),
        "attempts": state.attempt.get(node.id, 0),
        "x": x,
        "y": y,
        "w": TASK_W,
        "h": TASK_H,
    }
