"""A workflow as a trace: its canvas as a tree, each task with its state, attempts and
run time, folded from the history (``streamflow show``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from streamflow.model.definition import NONE, Definition, Spec, spec_leaves
from streamflow.model.events import Entry, TaskFailed, TaskStarted, TaskSucceeded
from streamflow.model.state import fold_all, task_counts

Tree = dict[str, Any]


def trace(workflow_id: str, history: Sequence[Entry], definition: Definition) -> Tree:
    """The workflow as nested dicts (JSON-ready): ``kind`` is ``workflow``, ``chain``,
    ``group`` or ``task``; tasks carry ``node``, ``actor``, ``state``, ``attempts``,
    ``duration_ms`` (their last attempt's run, None if it has not finished),
    ``error`` and, if they started any, ``child_workflows`` (their ids); callbacks hang
    under ``callbacks``. A child workflow's names its ``parent``."""
    state = fold_all(history)
    started: dict[tuple[int, int], int] = {}
    ended: dict[tuple[int, int], int] = {}
    for entry in history:
        event = entry.event
        if isinstance(event, TaskStarted):
            started.setdefault((event.node, event.attempt), entry.time_ms)
        elif isinstance(event, TaskSucceeded | TaskFailed):
            ended.setdefault((event.node, event.attempt), entry.time_ms)

    def task(node_id: int) -> Tree:
        node = definition.task(node_id)
        attempt = state.attempt.get(node_id, 0)
        if node_id in state.results:
            status = "succeeded"
        elif node_id in state.failures:
            status = "failed"
        elif not attempt:
            status = "waiting"
        elif state.deliveries.get(node_id):
            status = "running"
        elif node.signal is not None:
            status = "awaiting"  # its signal
        else:
            status = "retrying" if attempt > 1 else "queued"
        begin, end = started.get((node_id, attempt)), ended.get((node_id, attempt))
        error = state.failures.get(node_id)
        out: Tree = {
            "kind": "task",
            "node": node_id,
            "actor": node.actor if node.signal is None else f"signal {node.signal!r}",
            "state": status,
            "attempts": attempt,
            "duration_ms": end - begin if begin is not None and end is not None else None,
            "error": f"{error.get('type')}: {error.get('message')}" if error else None,
        }
        workflows = [c.child for c in state.children.values() if c.node == node_id]
        if workflows:
            out["child_workflows"] = workflows
        callbacks = [c for c in (node.on_success, node.on_failure) if c != NONE]
        if callbacks:
            out["callbacks"] = [task(c) for c in callbacks]
        return out

    def build(spec: Spec) -> Tree:
        if isinstance(spec, int):
            return task(spec)
        members = spec or []
        return {"kind": _kind(definition, members), "children": [build(m) for m in members]}

    end_ms = state.finished_ms or None
    tree: Tree = {
        "kind": "workflow",
        "workflow_id": workflow_id,
        "status": state.status,
        "tasks": task_counts(definition, state),
        "events": state.n,
        "duration_ms": end_ms - state.submitted_ms if end_ms else None,
        "error": state.end.get("error"),
        "reason": state.end.get("reason"),
        "parent": state.options.get("parent"),
        "fork": {k: v for k, v in (state.options.get("fork") or {}).items() if k != "results"},
        "children": [build(definition.full_spec)],
    }
    if definition.on_failure != NONE:
        tree["callbacks"] = [task(definition.on_failure)]
    return tree


def _kind(definition: Definition, members: list[Spec]) -> str:
    """A chain if some step's tasks wait on a barrier fed by the step before it."""
    leaves = [set(spec_leaves(m)) for m in members]
    steps = [s for s in leaves if s]
    for before, after in itertools.pairwise(steps):
        for node_id in after:
            node = definition.task(node_id)
            if node.pred != NONE and before & set(definition.barrier(node.pred).sources):
                return "chain"
    return "group"


def render_tree(
    tree: Tree, paint: Callable[[str, str], str], duration: Callable[[float], str]
) -> Iterator[str]:
    """Lines of a trace for a terminal: the workflow, then its canvas with box drawing."""
    counts = "  ".join(f"{k} {v}" for k, v in tree["tasks"].items() if v)
    took = "" if tree["duration_ms"] is None else f"  {duration(tree['duration_ms'])}"
    yield (
        f"workflow {tree['workflow_id']}  {paint(tree['status'], tree['status'])}"
        f"  {tree['events']} events{took}  ({counts})"
    )
    if tree["error"]:
        yield f"  error: {tree['error'].get('type')}: {tree['error'].get('message')}"
    if tree["reason"]:
        yield f"  reason: {tree['reason']}"
    parent = tree.get("parent")
    if parent:
        yield f"  parent: {parent['workflow_id']} node {parent['node']} attempt {parent['attempt']}"
    fork = tree.get("fork")
    if fork:
        why = f" ({fork['reason']})" if fork.get("reason") else ""
        yield f"  forked from: {fork['workflow_id']} node {fork['node']}{why}"
    children = tree["children"] + [{**c, "label": "on_failure"} for c in tree.get("callbacks", [])]
    yield from _lines(children, "", paint, duration)


def _lines(
    items: list[Tree],
    prefix: str,
    paint: Callable[[str, str], str],
    duration: Callable[[float], str],
) -> Iterator[str]:
    for i, item in enumerate(items):
        last = i == len(items) - 1
        branch, extend = ("└─ ", "   ") if last else ("├─ ", "│  ")
        if item["kind"] == "task":
            yield prefix + branch + _task_line(item, paint, duration)
            nested = [{**c, "label": "callback"} for c in item.get("callbacks", [])]
            for child in item.get("child_workflows", []):
                # an id, or (show --children) the child's own tree
                if isinstance(child, str):
                    yield prefix + extend + f"↳ child workflow {child}"
                else:
                    lines = render_tree({**child, "parent": None}, paint, duration)
                    yield prefix + extend + "↳ child " + next(lines)
                    for line in lines:
                        yield prefix + extend + "  " + line
        else:
            empty = "" if item["children"] else " (empty)"
            yield prefix + branch + item["kind"] + empty
            nested = item["children"]
        yield from _lines(nested, prefix + extend, paint, duration)


def _task_line(
    item: Tree, paint: Callable[[str, str], str], duration: Callable[[float], str]
) -> str:
    parts = [f"{item['actor']} #{item['node']}", paint(item["state"], item["state"])]
    if item["attempts"] > 1:
        parts.append(f"attempt {item['attempts']}")
    if item["duration_ms"] is not None:
        parts.append(duration(item["duration_ms"]))
    if item["error"]:
        parts.append(item["error"])
    label = f"{item['label']}: " if item.get("label") else ""
    return label + "  ".join(parts)
