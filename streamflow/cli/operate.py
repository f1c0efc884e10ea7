"""Commands that operate a deployment: run a worker, and look at or act on one workflow
(status, cancel, rebuild) or on the dead letters."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

from streamflow.cli.common import connect
from streamflow.cli.discover import load_worker_app
from streamflow.cli.processes import follow_supervisor, processes_of, supervise
from streamflow.logs import get_logger
from streamflow.model import codec
from streamflow.model.errors import DecodeError
from streamflow.model.messages import decode_task_message
from streamflow.store.connection import masked

log = get_logger(__name__)


def cmd_worker(args: argparse.Namespace) -> int:
    processes = processes_of(args)
    if processes != 1 or args.watch:
        return supervise(args, processes)
    if args.supervised:
        follow_supervisor()
    if args.url:
        # Before the import: an App() without a URL in the module picks this up.
        os.environ["STREAMFLOW_REDIS_URL"] = args.url
    app, discovered = load_worker_app(args.app, args.discover)
    if discovered:
        log.info("tasks_discovered", modules=discovered)
    if args.url and app.url != args.url:
        raise SystemExit(
            f"{args.app} connects to {masked(app.url)}, not to --url {masked(args.url)}: "
            "build its App without a URL (it then takes --url), or drop --url"
        )
    if app.embedded and not args.embedded:
        raise SystemExit(
            f"{args.app} has no Redis URL: pass --url, set STREAMFLOW_REDIS_URL, or "
            "--embedded to run on a private server no other process can reach"
        )
    worker = app.worker(
        queues=args.queues or None,
        concurrency=args.concurrency,
        lease_ms=args.lease_ms,
        grace_s=args.grace,
        tasks="tasks" in args.roles,
        recovery="recovery" in args.roles,
        timer="timer" in args.roles,
        shards=args.shards,
    )
    if args.metrics_port is not None:
        from streamflow.metrics import serve

        serve(app, args.metrics_port, args.metrics_host)
    args.started = True  # from here on, a failure is not one of starting
    worker.run()
    return 0


def shard_ranges(text: str) -> list[int]:
    """``--shards``: ``0-7``, ``3`` or ``0,3,8-11`` as the shard numbers they name.

    Raises:
        argparse.ArgumentTypeError: not such a list.
    """
    shards: list[int] = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not (high.isdigit() and int(high) >= int(low))):
            raise argparse.ArgumentTypeError(
                f"shards are numbers and ranges like 0-7 or 0,3,8-11 (got {text!r})"
            )
        shards += range(int(low), int(high if dash else low) + 1)
    return shards


def cmd_status(args: argparse.Namespace) -> int:
    app = connect(args)
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


def cmd_rebuild(args: argparse.Namespace) -> int:
    app = connect(args)
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
        if not app.client.exists(app.keys.log(workflow_id)):
            archived = app.client.exists(app.keys.archive(workflow_id))
            print(f"{workflow_id}: {'archived: no index to rebuild' if archived else 'not found'}")
            if args.workflow_id:
                return 1
            continue
        app.projector.rebuild(workflow_id, discard=True)
        print(f"rebuilt {workflow_id}")
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    """``pause`` and ``resume`` (of a queue or an actor; ``resume ID``: of a workflow)."""
    app = connect(args)
    if getattr(args, "workflow_id", None):
        if args.queue or args.actor:
            raise SystemExit("resume takes a workflow id, or --queue / --actor, not both")
        if args.from_node is not None:
            fork = app.fork_workflow(
                args.workflow_id, args.from_node, reason=args.reason, by=args.by
            )
            submitted = fork.history()[0].event
            kept = len(submitted.options["fork"]["results"])  # type: ignore[attr-defined]
            print(
                f"forked {args.workflow_id} as {fork.id}: node {args.from_node} and what "
                f"follows from it run again, {kept} result{'s' * (kept != 1)} kept"
            )
            return 0
        nodes = app.resume_workflow(args.workflow_id, reason=args.reason, by=args.by)
        print(f"resumed {args.workflow_id}: node{'s' * (len(nodes) != 1)} {nodes} run again")
        return 0
    if getattr(args, "from_node", None) is not None:
        raise SystemExit("--from NODE needs a workflow id")
    (app.pause if args.command == "pause" else app.resume)(queue=args.queue, actor=args.actor)
    said = " and ".join(
        f"{kind} {name}" for kind, name in (("queue", args.queue), ("actor", args.actor)) if name
    )
    print(f"{args.command}d {said}")
    return 0


def cmd_paused(args: argparse.Namespace) -> int:
    paused = connect(args).paused()
    for kind, names in (("queue", paused.queues), ("actor", paused.actors)):
        for name in sorted(names):
            print(f"{kind:<6} {name}")
    if not paused:
        print("nothing is paused")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    app = connect(args)
    keys = app.keys.workflow(args.workflow_id)
    if not app.client.exists(keys.log, keys.archive):
        print(f"{args.workflow_id}: not found")
        return 1
    if app.handle(args.workflow_id).cancel(args.reason):
        print(f"cancelled {args.workflow_id}")
        return 0
    print(f"{args.workflow_id} had already ended")
    return 1


def cmd_signal(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.json)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--json is not JSON ({exc}): {args.json!r}") from None
    if connect(args).signal(args.workflow_id, args.name, payload, sender=args.sender):
        print(f"signal {args.name!r} sent to {args.workflow_id}")
        return 0
    print(f"{args.workflow_id} had received signal {args.name!r} already (a duplicate)")
    return 1


def cmd_dead_letters(args: argparse.Namespace) -> int:
    letters = connect(args).dead_letters
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
        print(f"{'decoded':<14} {_decoded(letter.data)}")
    elif args.action == "requeue":
        print(f"requeued as {letters.requeue(args.id)}")
    else:
        print(f"purged {letters.purge()}")
    return 0


def _decoded(data: bytes) -> str:
    """What a dead letter's bytes say, as far as they can be read."""
    try:
        workflow_id, node, attempt, def_hash = decode_task_message(data)
    except DecodeError:
        pass
    else:
        where = f"workflow {workflow_id} node {node} attempt {attempt}"
        return f"task message: {where}, definition {def_hash}"
    try:
        return f"{codec.decode(data)!r:.500}"
    except DecodeError as exc:
        return f"(not readable: {exc})"
