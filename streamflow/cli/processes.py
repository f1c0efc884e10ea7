"""``streamflow worker --processes N [--watch DIR]``: the command line of each worker
process, and the supervisor that runs them (streamflow/cli/supervisor.py)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from streamflow.cli.supervisor import Supervisor
from streamflow.logs import get_logger

log = get_logger(__name__)


def processes_of(args: argparse.Namespace) -> int:
    """How many worker processes ``args`` ask for: ``--processes``, else one per CPU (one
    with ``--embedded``: its private server is reachable from one process only).

    Raises:
        SystemExit: ``--embedded`` with more than one process.
    """
    if args.processes is None:
        return 1 if args.embedded else os.cpu_count() or 1
    if args.embedded and args.processes != 1:
        raise SystemExit(
            "--embedded runs a private server that only its own process reaches: "
            f"it takes --processes 1 (got {args.processes})"
        )
    return int(args.processes)


def positive(text: str) -> int:
    """``--processes``: a whole number of at least 1.

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1 (got {text!r})")
    return int(text)


def child_command(args: argparse.Namespace, index: int) -> list[str]:
    """The command line of worker process ``index``: this command with ``--processes 1``,
    without ``--watch``, serving metrics (if asked) on ``--metrics-port`` + ``index``."""
    command = [sys.executable, "-m", "streamflow.cli"]
    if args.log_level:
        command += ["--log-level", args.log_level]
    if args.traceback:
        command.append("--traceback")
    command += ["worker", args.app, "--processes", "1", "--supervised"]
    command += ["--concurrency", str(args.concurrency), "--lease-ms", str(args.lease_ms)]
    command += ["--grace", str(args.grace), "--roles", *args.roles]
    if args.queues:
        command += ["--queues", *args.queues]
    if args.url:
        command += ["--url", args.url]
    if args.embedded:  # one process only (with --watch): each start has a fresh server
        command.append("--embedded")
    if args.shards is not None:
        command += ["--shards", ",".join(map(str, args.shards))]
    if args.discover:
        command += ["--discover", args.discover]
    if args.metrics_port is not None:
        command += ["--metrics-port", str(args.metrics_port + index)]
        command += ["--metrics-host", args.metrics_host]
    return command


def python_changes(directory: str) -> Callable[[threading.Event], Iterator[object]]:
    """For ``--watch``: what yields each time a ``.py`` file under ``directory`` changes.

    Raises:
        ImportError: watchfiles is not installed (the extra ``streamflow[watch]``).
        SystemExit: ``directory`` is not a directory.
    """
    try:
        import watchfiles
    except ImportError:
        raise ImportError("--watch needs watchfiles: pip install 'streamflow[watch]'") from None
    if not Path(directory).is_dir():
        raise SystemExit(f"--watch expects a directory (got {directory!r}: not a directory)")

    def changes(stop: threading.Event) -> Iterator[object]:
        yield from watchfiles.watch(
            directory, watch_filter=watchfiles.PythonFilter(), stop_event=stop
        )

    return changes


def supervise(args: argparse.Namespace, processes: int) -> int:
    """Run ``processes`` worker processes under a supervisor until it is stopped."""
    changes = python_changes(args.watch) if args.watch else None
    commands = [child_command(args, index) for index in range(processes)]
    return Supervisor(commands, grace_s=args.grace, changes=changes, name=args.app).run()


def follow_supervisor() -> None:
    """In a supervised worker: stop gracefully (SIGTERM to itself) once its supervisor is
    gone, killed without the chance to stop it, rather than run on unsupervised."""
    supervisor = os.getppid()

    def watch() -> None:
        tick = threading.Event()
        while os.getppid() == supervisor:
            tick.wait(1.0)
        log.warning("supervisor_gone", supervisor=supervisor, worker=os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="streamflow-supervisor-gone", daemon=True).start()
