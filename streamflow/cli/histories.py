"""Commands that read histories: history, export, audit, replay, ls, show."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

from streamflow.cli.common import Paint, connect, duration, event_row, load_history
from streamflow.history.audit import audit, audit_child, replay
from streamflow.history.export import export_jsonl
from streamflow.history.trace import render_tree, trace
from streamflow.model.definition import Definition
from streamflow.model.errors import DecodeError, DefinitionError, WorkflowNotFoundError
from streamflow.model.events import Entry, WorkflowSubmitted
from streamflow.model.state import fold_all


def cmd_history(args: argparse.Namespace) -> int:
    workflow_id, history, _ = load_history(args)
    paint = Paint.for_stream(sys.stdout)
    _print_history(args, paint, workflow_id, history)
    for child_id, child, _ in _family(args, history):
        if not args.json:
            print(f"── child workflow {child_id}")
        _print_history(args, paint, child_id, child)
    return 0


def _print_history(
    args: argparse.Namespace, paint: Paint, workflow_id: str, history: list[Entry]
) -> None:
    for entry in history:
        row = event_row(entry)
        if args.node is not None and row.get("node") != args.node:
            continue
        if args.type and row["type"] not in args.type:
            continue
        if args.json:
            print(json.dumps({"workflow_id": workflow_id, **row}, default=repr))
            continue
        shown = " ".join(f"{k}={v!r}" for k, v in row.items() if k not in ("seq", "id", "type"))
        kind = paint.event(f"{row['type']:<19}", row["type"])
        print(f"{entry.seq:>6} {entry.stream_id:<20} {kind} {shown}")


def _family(
    args: argparse.Namespace, history: list[Entry]
) -> Iterator[tuple[str, list[Entry], Definition]]:
    """With ``--children``, every child workflow the log names, all the way down (its
    id, history and definition), depth first; one removed by its retention is left
    out."""
    if not getattr(args, "children", False) or args.workflow_id.endswith(".jsonl"):
        return
    app = connect(args)
    for child_id in fold_all(history).children:
        try:
            child = app.history(child_id)
        except WorkflowNotFoundError:
            continue
        submitted = child[0].event
        assert isinstance(submitted, WorkflowSubmitted)
        yield child_id, child, app.definitions.get(submitted.def_hash, child_id)
        yield from _family(args, child)


def cmd_export(args: argparse.Namespace) -> int:
    print(export_jsonl(*load_history(args)), end="")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """audit and replay: one workflow, an exported file, or (audit) every workflow."""
    if args.command == "audit" and args.all:
        if args.workflow_id:
            raise SystemExit("audit needs a workflow id or --all (not both)")
        return _audit_all(args)
    if not args.workflow_id:
        raise SystemExit(f"{args.command} needs a workflow id or an exported .jsonl file")
    workflow_id, history, definition = load_history(args)
    check = audit if args.command == "audit" else replay
    found: list[tuple[str, Any]] = [(workflow_id, item) for item in check(history, definition)]
    events, logs = len(history), {workflow_id: (history, definition)}
    for child_id, child, child_definition in _family(args, history):
        logs[child_id] = child, child_definition
        events += len(child)
        found += [(child_id, item) for item in audit(child, child_definition)]
        parent_id = fold_all(child).options["parent"]["workflow_id"]
        parent, parent_definition = logs[parent_id]
        links = audit_child(parent_id, parent, parent_definition, child_id, child)
        found += [(parent_id, item) for item in links]
    for where, item in found:
        if args.json:
            print(json.dumps({"workflow_id": where, **dataclasses.asdict(item)}))
        else:
            print(item if where == workflow_id else f"{where}  {item}")
    if not found and not args.json:
        also = f" in {len(logs)} workflows" if len(logs) > 1 else ""
        print(f"{args.command}: {events} events{also}, nothing found")
    return 1 if found else 0


def _audit_all(args: argparse.Namespace) -> int:
    app = connect(args)
    summaries = app.workflows(limit=sys.maxsize)
    dirty = events = 0
    started = time.monotonic()
    for i, summary in enumerate(summaries, 1):
        try:
            history = app.history(summary.workflow_id)
            submitted = history[0].event
            assert isinstance(submitted, WorkflowSubmitted)
            definition = app.definitions.get(submitted.def_hash, summary.workflow_id)
            found: list[Any] = audit(history, definition)
        except WorkflowNotFoundError:
            continue  # removed by its retention since it was listed
        except (DecodeError, DefinitionError) as exc:
            # Unreadable: one line for it, and the audit goes on with the others.
            dirty += 1
            line = {"workflow_id": summary.workflow_id, "unreadable": str(exc)}
            print(json.dumps(line) if args.json else f"{summary.workflow_id}  unreadable: {exc}")
            continue
        events += len(history)
        dirty += bool(found)
        for item in found:
            if args.json:
                print(json.dumps({"workflow_id": summary.workflow_id, **dataclasses.asdict(item)}))
            else:
                print(f"{summary.workflow_id}  {item}")
        if sys.stderr.isatty() and (i % 100 == 0 or i == len(summaries)):
            print(f"\r  audited {i}/{len(summaries)} workflows", end="", file=sys.stderr)
    if sys.stderr.isatty() and summaries:
        print(file=sys.stderr)
    if not args.json:
        elapsed = time.monotonic() - started
        print(
            f"audit: {len(summaries)} workflows, {events} events in {elapsed:.1f} s; "
            f"{dirty} with violations"
        )
    return 1 if dirty else 0


def cmd_ls(args: argparse.Namespace) -> int:
    app = connect(args)
    summaries = app.workflows(args.status, args.limit)
    if args.json:
        for summary in summaries:
            print(json.dumps(dataclasses.asdict(summary)))
        return 0
    paint = Paint.for_stream(sys.stdout)
    print(f"{'WORKFLOW':<28} {'STATUS':<10} {'SUBMITTED':<19} {'DURATION':>10} {'EVENTS':>7}")
    for s in summaries:
        submitted = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.submitted_ms / 1000))
        took = "" if s.ended_ms is None else duration(s.ended_ms - s.submitted_ms)
        status = paint.status(f"{s.status:<10}", s.status)
        print(f"{s.workflow_id:<28} {status} {submitted:<19} {took:>10} {s.events:>7}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    workflow_id, history, definition = load_history(args)
    tree = trace(workflow_id, history, definition)
    if getattr(args, "children", False):
        trees = {workflow_id: tree}
        for child_id, child, child_definition in _family(args, history):
            trees[child_id] = trace(child_id, child, child_definition)
        for each in trees.values():  # each task's child ids become the children's trees
            _nest(each["children"], trees)
    if args.json:
        print(json.dumps(tree))
        return 0
    paint = Paint.for_stream(sys.stdout)
    for line in render_tree(tree, paint.status, duration):
        print(line)
    return 0


def _nest(items: list[Any], trees: dict[str, Any]) -> None:
    for item in items:
        if item["kind"] == "task":
            ids = item.get("child_workflows", [])
            item["child_workflows"] = [trees.get(c, c) for c in ids]
            _nest(item.get("callbacks", []), trees)
        else:
            _nest(item["children"], trees)
