"""The ``streamflow`` command: worker, status, demo."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from streamflow.api.app import App
from streamflow.api.canvas import Chain, Group
from streamflow.api.handles import WorkflowHandle
from streamflow.history.audit import audit, replay
from streamflow.history.export import export_jsonl, import_jsonl
from streamflow.history.listing import STATUSES
from streamflow.history.trace import render_tree, trace
from streamflow.model.definition import Definition
from streamflow.model.errors import WorkflowNotFoundError
from streamflow.model.events import Entry, TaskEnqueued, WorkflowSubmitted
from streamflow.model.messages import encode_task_message


def configure_logging(level: str) -> None:
    """Human-readable structlog output on stderr (only the CLI configures logging)."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
    )


def load_app(spec: str) -> App:
    """Import ``module:attribute`` and return the App it names.

    Raises:
        SystemExit: the spec is malformed or does not name an App.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise SystemExit(f"expected module:app (got {spec!r})")
    sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    app = getattr(module, attribute, None)
    if not isinstance(app, App):
        raise SystemExit(f"{spec} is not a streamflow App (got {type(app).__name__})")
    return app


def _url(args: argparse.Namespace) -> str:
    url: str | None = args.url or os.environ.get("STREAMFLOW_REDIS_URL")
    if not url:
        raise SystemExit("no Redis URL: pass --url or set STREAMFLOW_REDIS_URL")
    return url


def cmd_worker(args: argparse.Namespace) -> int:
    if args.url:
        # Before the import: an App() without a URL in the module picks this up.
        os.environ["STREAMFLOW_REDIS_URL"] = args.url
    app = load_app(args.app)
    worker = app.worker(
        queues=args.queues or None,
        concurrency=args.concurrency,
        lease_ms=args.lease_ms,
        grace_s=args.grace,
        tasks="tasks" in args.roles,
        recovery="recovery" in args.roles,
        timer="timer" in args.roles,
    )
    worker.run()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    app = App(_url(args), prefix=args.prefix)
    status = app.handle(args.workflow_id).status()
    if args.json:
        print(json.dumps(dataclasses.asdict(status), default=str))
    else:
        print(f"workflow  {status.workflow_id}")
        print(f"status    {status.status}{' (archived)' if status.archived else ''}")
        print(f"events    {status.events}")
        print("tasks     " + "  ".join(f"{k} {v}" for k, v in status.counts.items()))
        if status.error:
            print(f"error     {status.error.get('type')}: {status.error.get('message')}")
        if status.reason:
            print(f"reason    {status.reason}")
    return 0


def _load(args: argparse.Namespace) -> tuple[str, list[Entry], Definition]:
    if args.workflow_id.endswith(".jsonl"):  # an exported history, e.g. a CI fixture
        return import_jsonl(Path(args.workflow_id).read_text(encoding="utf-8"))
    app = App(_url(args), prefix=args.prefix)
    history = app.history(args.workflow_id)
    submitted = history[0].event
    assert isinstance(submitted, WorkflowSubmitted)
    return args.workflow_id, history, app.definitions.get(submitted.def_hash)


def _event_row(entry: Entry) -> dict[str, Any]:
    event = entry.event
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name != "args"}
    return {"seq": entry.seq, "id": entry.stream_id, "type": type(event).__name__, **fields}


def cmd_history(args: argparse.Namespace) -> int:
    _, history, _ = _load(args)
    paint = Paint.for_stream(sys.stdout)
    for entry in history:
        row = _event_row(entry)
        if args.node is not None and row.get("node") != args.node:
            continue
        if args.type and row["type"] not in args.type:
            continue
        if args.json:
            print(json.dumps(row, default=repr))
            continue
        shown = " ".join(f"{k}={v!r}" for k, v in row.items() if k not in ("seq", "id", "type"))
        kind = paint.event(f"{row['type']:<19}", row["type"])
        print(f"{entry.seq:>6} {entry.stream_id:<20} {kind} {shown}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    print(export_jsonl(*_load(args)), end="")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """audit and replay: one workflow, an exported file, or (audit) every workflow."""
    if args.command == "audit" and args.all:
        if args.workflow_id:
            raise SystemExit("audit needs a workflow id or --all (not both)")
        return _audit_all(args)
    if not args.workflow_id:
        raise SystemExit(f"{args.command} needs a workflow id or an exported .jsonl file")
    workflow_id, history, definition = _load(args)
    check = audit if args.command == "audit" else replay
    found: list[Any] = check(history, definition)
    for item in found:
        print(
            json.dumps({"workflow_id": workflow_id, **dataclasses.asdict(item)})
            if args.json
            else item
        )
    if not found and not args.json:
        print(f"{args.command}: {len(history)} events, nothing found")
    return 1 if found else 0


def _audit_all(args: argparse.Namespace) -> int:
    app = App(_url(args), prefix=args.prefix)
    summaries = app.workflows(limit=sys.maxsize)
    dirty = events = 0
    started = time.monotonic()
    for i, summary in enumerate(summaries, 1):
        try:
            history = app.history(summary.workflow_id)
        except WorkflowNotFoundError:
            continue  # removed by its retention since it was listed
        submitted = history[0].event
        assert isinstance(submitted, WorkflowSubmitted)
        found = audit(history, app.definitions.get(submitted.def_hash))
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
    app = App(_url(args), prefix=args.prefix)
    summaries = app.workflows(args.status, args.limit)
    if args.json:
        for summary in summaries:
            print(json.dumps(dataclasses.asdict(summary)))
        return 0
    paint = Paint.for_stream(sys.stdout)
    print(f"{'WORKFLOW':<28} {'STATUS':<10} {'SUBMITTED':<19} {'DURATION':>10} {'EVENTS':>7}")
    for s in summaries:
        submitted = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.submitted_ms / 1000))
        duration = "" if s.ended_ms is None else _duration(s.ended_ms - s.submitted_ms)
        status = paint.status(f"{s.status:<10}", s.status)
        print(f"{s.workflow_id:<28} {status} {submitted:<19} {duration:>10} {s.events:>7}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    workflow_id, history, definition = _load(args)
    tree = trace(workflow_id, history, definition)
    if args.json:
        print(json.dumps(tree))
        return 0
    paint = Paint.for_stream(sys.stdout)
    for line in render_tree(tree, paint.status, _duration):
        print(line)
    return 0


def _duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60_000:.1f} min"


class Paint:
    """ANSI colours for a terminal; nothing at all when output goes elsewhere."""

    _STATUS = {
        "completed": "32",
        "succeeded": "32",
        "failed": "31",
        "cancelled": "35",
        "running": "33",
        "retrying": "33",
        "queued": "36",
        "waiting": "2",
    }
    _EVENT = {
        "TaskSucceeded": "32",
        "WorkflowCompleted": "32",
        "TaskFailed": "31",
        "WorkflowFailed": "31",
        "WorkflowCancelled": "35",
        "HistoryWarning": "33",
    }

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: Any) -> Paint:
        return cls(stream.isatty() and not os.environ.get("NO_COLOR"))

    def _wrap(self, text: str, code: str | None) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and code else text

    def status(self, text: str, status: str) -> str:
        return self._wrap(text, self._STATUS.get(status))

    def event(self, text: str, kind: str) -> str:
        return self._wrap(text, self._EVENT.get(kind))


def cmd_rebuild(args: argparse.Namespace) -> int:
    app = App(_url(args), prefix=args.prefix)
    if args.all == bool(args.workflow_id):
        raise SystemExit("rebuild needs a workflow id or --all (not both)")
    ids = (
        [args.workflow_id]
        if args.workflow_id
        else [
            raw.decode()
            for shard in range(app.shards)
            for raw in app.client.sscan_iter(app.keys.active(shard))
        ]
    )
    for workflow_id in ids:
        app.projector.rebuild(workflow_id, discard=True)
        print(f"rebuilt {workflow_id}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    app = App(_url(args), prefix=args.prefix)
    if app.handle(args.workflow_id).cancel(args.reason):
        print(f"cancelled {args.workflow_id}")
        return 0
    print(f"{args.workflow_id} had already ended")
    return 1


def cmd_dead_letters(args: argparse.Namespace) -> int:
    letters = App(_url(args), prefix=args.prefix).dead_letters
    if args.action in ("show", "requeue") and not args.id:
        raise SystemExit(f"dead-letters {args.action} needs an id")
    if args.action == "list":
        for letter in letters.list(args.limit):
            print(f"{letter.id:<22} {letter.queue:<24} {letter.reason}")
    elif args.action == "show":
        letter = letters.get(args.id)
        for field in ("id", "reason", "queue", "msg_id", "first_seen_ms", "last_seen_ms"):
            print(f"{field:<14} {getattr(letter, field)}")
        print(f"{'data':<14} {letter.data!r}")
    elif args.action == "requeue":
        print(f"requeued as {letters.requeue(args.id)}")
    else:
        print(f"purged {letters.purge()}")
    return 0


def _largest_message(handle: WorkflowHandle) -> tuple[int, int]:
    """Largest queue message (bytes) and log length, from the workflow's history."""
    history = handle.history()
    submitted = history[0].event
    assert isinstance(submitted, WorkflowSubmitted)
    largest = 0
    for entry in history:
        if isinstance(entry.event, TaskEnqueued):
            message = encode_task_message(
                handle.id, entry.event.node, entry.event.attempt, submitted.def_hash
            )
            largest = max(largest, len(message))
    return largest, len(history)


def _run_with_progress(app: App, name: str, canvas: Any) -> None:
    started = time.monotonic()
    handle = app.submit(canvas)
    while True:
        status = handle.status()
        total = sum(status.counts.values())
        done = status.counts["succeeded"]
        print(f"\r  {name}: {done}/{total} tasks done", end="", flush=True)
        if status.done:
            break
        with contextlib.suppress(TimeoutError):
            handle.wait(timeout=0.5)
    elapsed = time.monotonic() - started
    result = handle.result(timeout=1)
    largest, events = _largest_message(handle)
    shown = repr(result)
    if len(shown) > 100:
        shown = shown[:97] + "..."
    print(f"\r  {name}: {done}/{total} tasks done in {elapsed:.2f} s")
    print(f"    result          {shown}")
    print(f"    largest message {largest} bytes")
    print(f"    log length      {events} events")


def cmd_demo(args: argparse.Namespace) -> int:
    print("streamflow demo: starting an embedded Redis and an in-process worker")
    app = App(os.environ.get("STREAMFLOW_REDIS_URL") or None)

    @app.actor
    def t1() -> int:
        return 3

    @app.actor
    def double(x: int) -> int:
        return x * 2

    @app.actor
    def increment(x: int) -> int:
        return x + 1

    @app.actor
    def times_ten(x: int) -> int:
        return x * 10

    @app.actor
    def square(x: int) -> int:
        return x * x

    @app.actor
    async def negate(x: int) -> int:
        return -x

    @app.actor
    def summarize(parts: list[Any]) -> str:
        return f"t8 got {parts}"

    @app.actor
    def item(i: int) -> int:
        return i

    @app.actor
    def total(values: list[int]) -> int:
        return sum(values)

    with app.worker(concurrency=8):
        # The seed DAG: Chain(t1, Group(Chain(t2, t5), t3, Chain(t4, Group(t6, t7))), t8)
        seed = Chain(
            t1.message(),
            Group(
                Chain(double.message(), increment.message()),
                times_ten.message(),
                Chain(increment.message(), Group(square.message(), negate.message())),
            ),
            summarize.message(),
        )
        _run_with_progress(app, "seed DAG (8 tasks)", seed)
        wide = Chain(
            t1.message(),
            Group(*(item.message_with_options(args=(i,), pipe_ignore=True) for i in range(1000))),
            total.message(),
        )
        _run_with_progress(app, "Chain(a, Group(1000), c)", wide)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamflow", description=__doc__)
    parser.add_argument(
        "--log-level", help="debug, info, warning, error (default: info; warning for demo)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # Commands that talk to Redis themselves (the worker's App comes from its module).
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument("--url", help="Redis URL (default: STREAMFLOW_REDIS_URL)")
    connection.add_argument("--prefix", default="sf", help="key prefix (default: sf)")

    worker = sub.add_parser("worker", help="run a worker for module:app")
    worker.add_argument("app", help="module:attribute naming a streamflow App")
    worker.add_argument("--queues", nargs="+", help="queues to read (default: all)")
    worker.add_argument("--concurrency", type=int, default=8)
    worker.add_argument("--url", help="Redis URL (default: STREAMFLOW_REDIS_URL)")
    worker.add_argument("--lease-ms", type=int, default=30_000)
    worker.add_argument(
        "--grace", type=float, default=30.0, help="seconds in-flight tasks get on SIGTERM"
    )
    worker.add_argument(
        "--roles",
        nargs="+",
        choices=("tasks", "timer", "recovery"),
        default=["tasks", "timer", "recovery"],
        help="what this process does (default: everything)",
    )
    worker.set_defaults(func=cmd_worker)

    status = sub.add_parser("status", help="show a workflow's status", parents=[connection])
    status.add_argument("workflow_id")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    cancel = sub.add_parser("cancel", help="cancel a running workflow", parents=[connection])
    cancel.add_argument("workflow_id")
    cancel.add_argument("--reason", default="cancelled from the command line")
    cancel.set_defaults(func=cmd_cancel)

    dead = sub.add_parser(
        "dead-letters", help="list, show, requeue or purge dead letters", parents=[connection]
    )
    dead.add_argument("action", choices=("list", "show", "requeue", "purge"))
    dead.add_argument("id", nargs="?", help="a dead letter's id (show, requeue)")
    dead.add_argument("--limit", type=int, default=100)
    dead.set_defaults(func=cmd_dead_letters)

    ls = sub.add_parser("ls", help="list recent workflows, newest first", parents=[connection])
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_ls)

    source = argparse.ArgumentParser(add_help=False, parents=[connection])
    source.add_argument("--json", action="store_true")
    show = sub.add_parser(
        "show", help="a workflow as a tree: each node's state, attempts, duration", parents=[source]
    )
    show.add_argument("workflow_id", help="a workflow id, or an exported .jsonl file")
    show.set_defaults(func=cmd_show)

    history = sub.add_parser("history", help="print a workflow's events", parents=[source])
    history.add_argument("workflow_id", help="a workflow id, or an exported .jsonl file")
    history.add_argument("--node", type=int, help="only events about this node")
    history.add_argument("--type", nargs="+", help="only events of these types (TaskFailed ...)")
    history.set_defaults(func=cmd_history)

    export = sub.add_parser(
        "export", help="print a workflow's history as JSON Lines (a test fixture)", parents=[source]
    )
    export.add_argument("workflow_id")
    export.set_defaults(func=cmd_export)

    check = sub.add_parser(
        "audit",
        help="check logs against the contract (exit 1 on a violation)",
        parents=[source],
    )
    check.add_argument("workflow_id", nargs="?", help="a workflow id, or an exported .jsonl file")
    check.add_argument("--all", action="store_true", help="every workflow still kept")
    check.set_defaults(func=cmd_check)
    rerun = sub.add_parser(
        "replay",
        help="re-derive every recorded decision with today's code (exit 1 if any differs)",
        parents=[source],
    )
    rerun.add_argument("workflow_id", help="a workflow id, or an exported .jsonl file")
    rerun.set_defaults(func=cmd_check, all=False)

    rebuild = sub.add_parser(
        "rebuild",
        help="delete a workflow's derived index and rebuild it from its log",
        parents=[connection],
    )
    rebuild.add_argument("workflow_id", nargs="?")
    rebuild.add_argument("--all", action="store_true", help="every active workflow")
    rebuild.set_defaults(func=cmd_rebuild)

    demo = sub.add_parser("demo", help="run the seed DAG and a 1,000-task group")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level or ("warning" if args.command == "demo" else "info"))
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
