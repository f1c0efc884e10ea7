"""The ``streamflow`` command: a worker, and tools to look at and act on workflows."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import redis

from streamflow.cli.common import configure_logging
from streamflow.cli.demo import cmd_demo
from streamflow.cli.discover import DEFAULT_PATTERN
from streamflow.cli.health import MAX_AGE_S, cmd_health
from streamflow.cli.histories import cmd_check, cmd_export, cmd_history, cmd_ls, cmd_show
from streamflow.cli.live import cmd_queues, cmd_stats, cmd_workers
from streamflow.cli.operate import (
    cmd_cancel,
    cmd_dead_letters,
    cmd_pause,
    cmd_paused,
    cmd_rebuild,
    cmd_signal,
    cmd_status,
    cmd_worker,
    shard_ranges,
)
from streamflow.cli.processes import positive
from streamflow.cli.results import cmd_result
from streamflow.cli.schedules import cmd_schedules
from streamflow.cli.supervisor import EXIT_NOT_STARTED
from streamflow.cli.web import add_parser as add_web_parser
from streamflow.history.listing import STATUSES
from streamflow.model.errors import StreamflowError
from streamflow.model.version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"streamflow {__version__}")
    parser.add_argument(
        "--log-level", help="debug, info, warning, error (default: info; warning for demo)"
    )
    parser.add_argument(
        "--traceback",
        "--debug",
        action="store_true",
        help="show the traceback of an error, not one line",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # Commands that talk to Redis themselves (the worker's App comes from its module).
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument("--url", help="Redis URL (default: STREAMFLOW_REDIS_URL)")
    connection.add_argument("--prefix", default="sf", help="key prefix (default: sf)")

    worker = sub.add_parser("worker", help="run workers for module:app, or for a package")
    worker.add_argument(
        "app",
        help="module:attribute naming a streamflow App, or a package: its App (attribute "
        "'app', else its one App) and every tasks module under it",
    )
    worker.add_argument("--queues", nargs="+", help="queues to read (default: all)")
    worker.add_argument(
        "--processes",
        type=positive,
        metavar="N",
        help="worker processes, under a supervisor that restarts them (default: one per CPU)",
    )
    worker.add_argument(
        "--concurrency", type=int, default=8, help="tasks at once per process (default: 8)"
    )
    worker.add_argument(
        "--discover",
        metavar="PATTERN",
        help=f"import the modules under the package matching this glob (default for a "
        f"package: {DEFAULT_PATTERN})",
    )
    worker.add_argument(
        "--watch",
        metavar="DIR",
        help="restart the workers when a .py file under DIR changes (streamflow[watch])",
    )
    # Set by the supervisor on the workers it runs (see cli/supervisor.py).
    worker.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument("--url", help="Redis URL (default: STREAMFLOW_REDIS_URL)")
    worker.add_argument("--lease-ms", type=int, default=30_000)
    worker.add_argument(
        "--embedded",
        action="store_true",
        help="with no URL, run on a private embedded server (no other process reaches it)",
    )
    worker.add_argument(
        "--grace", type=float, default=30.0, help="seconds in-flight tasks get on SIGTERM"
    )
    worker.add_argument(
        "--shards",
        type=shard_ranges,
        help="the shards to serve, as 0-7 or 0,3,8-11 (default: all)",
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        metavar="P",
        help="serve Prometheus metrics on /metrics at this port (streamflow[metrics])",
    )
    worker.add_argument(
        "--metrics-host",
        default="0.0.0.0",
        help="the address --metrics-port binds (default: 0.0.0.0, every interface)",
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

    result = sub.add_parser(
        "result",
        help="print a workflow's result as JSON (its failure: exit 1; not finished: exit 2)",
        parents=[connection],
    )
    result.add_argument("workflow_id")
    result.add_argument("--wait", action="store_true", help="wait for it to finish")
    result.add_argument("--timeout", type=float, help="with --wait: at most this many seconds")
    result.set_defaults(func=cmd_result)

    live = argparse.ArgumentParser(add_help=False, parents=[connection])
    live.add_argument("--json", action="store_true")
    live.add_argument("--watch", type=float, metavar="S", help="redraw every S seconds")
    workers = sub.add_parser(
        "workers", help="the worker processes, live or gone within the hour", parents=[live]
    )
    workers.add_argument("--all", action="store_true", help="every worker remembered (a day)")
    workers.set_defaults(func=cmd_workers)
    queues = sub.add_parser(
        "queues",
        help="per queue: length, waiting (the group's lag), in flight and its oldest, delayed, "
        "parked, dead letters",
        parents=[live],
    )
    queues.add_argument("--by-shard", action="store_true", help="a row per queue and shard")
    queues.set_defaults(func=cmd_queues)
    tallies = sub.add_parser(
        "stats",
        help="tasks per second, retries, failures, run and wait times, per queue and actor",
        parents=[live],
    )
    tallies.add_argument("--minutes", type=int, default=5, help="the window (default: 5)")
    tallies.set_defaults(func=cmd_stats)

    health = sub.add_parser(
        "health",
        help="a probe: exit 0 if Redis answers, the scripts load and (--worker) it beats",
        parents=[connection],
    )
    health.add_argument("--worker", help="a worker's consumer name, or its host (or host:pid)")
    health.add_argument(
        "--max-age", type=float, default=MAX_AGE_S, help="seconds a beat stays fresh (10)"
    )
    health.set_defaults(func=cmd_health)

    cancel = sub.add_parser("cancel", help="cancel a running workflow", parents=[connection])
    cancel.add_argument("workflow_id")
    cancel.add_argument("--reason", default="cancelled from the command line")
    cancel.set_defaults(func=cmd_cancel)

    signal = sub.add_parser(
        "signal",
        help="send a signal to a workflow (exit 1 if it had it already)",
        parents=[connection],
    )
    signal.add_argument("workflow_id")
    signal.add_argument("name", help="the signal's name, as in Signal(name)")
    signal.add_argument("--json", default="null", help="its payload, as JSON (default null)")
    signal.add_argument("--sender", default="streamflow signal", help="who or what sends it")
    signal.set_defaults(func=cmd_signal)

    dead = sub.add_parser(
        "dead-letters", help="list, show, requeue or purge dead letters", parents=[connection]
    )
    dead.add_argument("action", choices=("list", "show", "requeue", "purge"))
    dead.add_argument("id", nargs="?", help="a dead letter's id (show, requeue)")
    dead.add_argument("--limit", type=int, default=100)
    dead.set_defaults(func=cmd_dead_letters)

    for name, says in (
        ("pause", "pause a queue or an actor"),
        ("resume", "resume them, or a failed workflow"),
    ):
        pausing = sub.add_parser(name, help=f"{says}, for every worker", parents=[connection])
        pausing.add_argument("--queue", help="a queue's name")
        pausing.add_argument("--actor", help="an actor's name")
        if name == "resume":
            pausing.add_argument(
                "workflow_id",
                nargs="?",
                help="a failed workflow: run it again from where it failed",
            )
            pausing.add_argument(
                "--from",
                dest="from_node",
                type=int,
                metavar="NODE",
                help="fork it instead: a new workflow runs task NODE (as `show` numbers it) "
                "and what follows from it again, with the same inputs, keeping every other "
                "result (the workflow may have any status)",
            )
            pausing.add_argument("--reason", default="", help="why (recorded with it)")
            pausing.add_argument("--by", default="streamflow resume", help="who asks")
        pausing.set_defaults(func=cmd_pause)
    paused = sub.add_parser("paused", help="list what is paused", parents=[connection])
    paused.set_defaults(func=cmd_paused)
    timed = sub.add_parser(
        "schedules", help="list, pause, resume, delete or trigger schedules", parents=[connection]
    )
    timed.add_argument("action", choices=("list", "pause", "resume", "delete", "trigger"))
    timed.add_argument("name", nargs="?", help="a schedule's name (all but list)")
    timed.add_argument("--json", action="store_true", help="list: as JSON")
    timed.set_defaults(func=cmd_schedules)

    ls = sub.add_parser("ls", help="list recent workflows, newest first", parents=[connection])
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_ls)

    source = argparse.ArgumentParser(add_help=False, parents=[connection])
    source.add_argument("--json", action="store_true")
    family = argparse.ArgumentParser(add_help=False)
    family.add_argument(
        "--children", action="store_true", help="follow the links to child workflows, all the way"
    )
    show = sub.add_parser(
        "show",
        help="a workflow as a tree: each node's state, attempts, duration",
        parents=[source, family],
    )
    show.add_argument("workflow_id", help="a workflow id, or an exported .jsonl file")
    show.set_defaults(func=cmd_show)

    history = sub.add_parser("history", help="print a workflow's events", parents=[source, family])
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
        parents=[source, family],
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

    add_web_parser(sub, connection)

    demo = sub.add_parser("demo", help="run the seed DAG and a 1,000-task group")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level or ("warning" if args.command == "demo" else "info"))
    try:
        result: int = args.func(args)
    except BrokenPipeError:
        # The reader went away (``| head``): end quietly, and let the interpreter's last
        # flush of stdout go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (StreamflowError, redis.RedisError, ImportError, OSError, KeyError, ValueError) as exc:
        if args.traceback:
            raise
        # One line, no traceback (--traceback shows it).
        print(f"streamflow {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return _failed(args)
    except SystemExit as exc:
        if not isinstance(exc.code, str):
            raise
        print(exc.code, file=sys.stderr)
        return _failed(args)
    except KeyboardInterrupt:
        return 130
    return result


def _failed(args: argparse.Namespace) -> int:
    """The exit code of a command that failed: a supervised worker that never started
    tells its supervisor not to start it again."""
    if getattr(args, "supervised", False) and not getattr(args, "started", False):
        return EXIT_NOT_STARTED
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
