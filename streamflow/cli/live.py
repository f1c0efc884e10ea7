"""Live views of a deployment: ``streamflow workers``, ``streamflow queues`` and
``streamflow stats``. Each takes ``--json``; ``--watch S`` redraws every S seconds until
interrupted.

``queues`` shows, per queue (and shard): LENGTH, the entries of its stream (``XLEN``);
WAITING, those not yet delivered to a worker (the consumer group's lag); IN FLIGHT,
delivered and not yet acknowledged, and how long the OLDEST of them has been in its
queue; DELAYED, PARKED (by a pause) and DEAD letters."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence

from streamflow.cli.common import connect
from streamflow.store import roster, stats
from streamflow.store.queues import QueueStats, queue_stats, totals


def cmd_workers(args: argparse.Namespace) -> int:
    app = connect(args)

    def draw() -> str:
        cards, now_ms = roster.read_at(app.client, app.keys)
        cards = [card for card in cards if args.all or card.recent(now_ms)]
        if args.json:
            return json.dumps([{**dataclasses.asdict(c), "state": c.state(now_ms)} for c in cards])
        rows = [("CONSUMER", "STATE", "QUEUES", "BUSY", "SHARDS", "VERSION", "UP", "BEAT")]
        for card in cards:
            end_ms = card.stopped_ms or now_ms
            rows.append(
                (
                    card.consumer,
                    card.state(now_ms),
                    ",".join(card.queues),
                    f"{card.in_flight}/{card.concurrency}",
                    str(card.shards),
                    card.version,
                    _duration(end_ms - card.started_ms),
                    f"{_duration(now_ms - card.last_beat_ms)} ago",
                )
            )
        if len(rows) == 1:
            return "no worker beat within the last hour (--all: every one remembered)"
        return _table(rows)

    return watch(draw, args.watch)


def cmd_queues(args: argparse.Namespace) -> int:
    app = connect(args)

    def draw() -> str:
        stats = queue_stats(app.store)
        shown = stats if args.by_shard else totals(stats)
        if args.json:
            return json.dumps([dataclasses.asdict(each) for each in shown])
        rows: list[tuple[str, ...]] = [QUEUE_HEAD, *(_queue_row(each) for each in shown)]
        if len(rows) == 1:
            return "no queue holds anything"
        return _table(rows)

    return watch(draw, args.watch)


QUEUE_HEAD = (
    "QUEUE",
    "SHARD",
    "LENGTH",
    "WAITING",
    "IN FLIGHT",
    "OLDEST",
    "DELAYED",
    "PARKED",
    "DEAD",
)
"""The columns of ``streamflow queues`` (WAITING: the consumer group's lag)."""


def cmd_stats(args: argparse.Namespace) -> int:
    app = connect(args)
    if args.minutes < 1:
        raise ValueError(f"--minutes must be at least 1 (got {args.minutes})")

    def draw() -> str:
        window = stats.read(app.client, app.keys, app.store.now_ms(0), args.minutes)
        if args.json:
            return json.dumps(_stats_json(window))
        total = window.total
        ended = ", ".join(f"{n} {status}" for status, n in sorted(window.workflows.items()))
        head = (
            f"last {args.minutes} min: {total.attempts} attempts ended "
            f"({total.attempts / window.seconds:.1f}/s): {total.succeeded} succeeded, "
            f"{total.retried} retried, {total.failed} failed; "
            f"workflows ended: {ended or 'none'}"
        )
        rows: list[tuple[str, ...]] = [
            (
                "QUEUE",
                "ACTOR",
                "PER S",
                "OK",
                "RETRIED",
                "FAILED",
                "RUN p50",
                "p95",
                "WAIT p50",
                "p95",
            )
        ]
        rows += [_stats_row(each, window.seconds) for each in window.tasks]
        return head if len(rows) == 1 else f"{head}\n\n{_table(rows)}"

    return watch(draw, args.watch)


def _stats_row(each: stats.TaskStats, seconds: float) -> tuple[str, ...]:
    return (
        each.queue,
        each.actor,
        f"{each.attempts / seconds:.1f}",
        str(each.succeeded),
        str(each.retried),
        str(each.failed),
        _at_most(each.run_percentile(0.5)),
        _at_most(each.run_percentile(0.95)),
        _at_most(each.wait_percentile(0.5)),
        _at_most(each.wait_percentile(0.95)),
    )


def _stats_json(window: stats.Window) -> dict[str, object]:
    def one(each: stats.TaskStats) -> dict[str, object]:
        return {
            "queue": each.queue,
            "actor": each.actor,
            "per_second": round(each.attempts / window.seconds, 3),
            "succeeded": each.succeeded,
            "retried": each.retried,
            "failed": each.failed,
            "mean_run_ms": each.mean_run_ms(),
            "run_ms_p50": each.run_percentile(0.5),
            "run_ms_p95": each.run_percentile(0.95),
            "wait_ms_p50": each.wait_percentile(0.5),
            "wait_ms_p95": each.wait_percentile(0.95),
        }

    return {
        "minutes": window.minutes,
        "seconds": window.seconds,
        "total": one(window.total),
        "tasks": [one(each) for each in window.tasks],
        "workflows": window.workflows,
    }


def _at_most(ms: float | None) -> str:
    """A percentile read off the buckets: at most its bucket's bound."""
    if ms is None:
        return "-"
    if ms == float("inf"):
        return f">{_duration(stats.BUCKETS_MS[-1])}"
    return f"≤{ms:g}ms" if ms < 1000 else f"≤{_duration(ms)}"


def _queue_row(each: QueueStats) -> tuple[str, ...]:
    oldest = each.oldest_in_flight_ms
    return (
        each.queue,
        "all" if each.shard is None else str(each.shard),
        str(each.length),
        str(each.waiting),
        str(each.in_flight),
        "-" if oldest is None else _duration(oldest),
        str(each.delayed),
        str(each.parked),
        str(each.dead),
    )


def watch(draw: Callable[[], str], every_s: float | None) -> int:
    """Print ``draw()``; with ``every_s``, again every ``every_s`` seconds in place (on
    a terminal), until interrupted (exit status 130).

    An interrupt (Ctrl-C, SIGINT) only asks the loop to end after the draw under way: one
    landing inside a library's cleanup would otherwise be swallowed there and the loop
    go on. A second one, while a draw hangs (Redis unreachable), interrupts it.
    """
    if every_s is None:
        print(draw())
        return 0
    # A plain flag, not a threading.Event: the handler runs on the main thread, maybe
    # while it holds the Event's lock inside wait(), and set() would then deadlock.
    stop = [False]

    def interrupted(*_: object) -> None:
        if stop[0]:
            raise KeyboardInterrupt
        stop[0] = True

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        while not stop[0]:
            text = draw()
            if sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")  # home, clear: redraw in place
            print(text, flush=True)
            until = time.monotonic() + every_s
            while not stop[0] and time.monotonic() < until:
                time.sleep(min(0.05, max(0.0, until - time.monotonic())))
    finally:
        signal.signal(signal.SIGINT, previous)
    return 130


def _duration(ms: float) -> str:
    """``ms`` for a person: 42s, 3m05s, 2h07m, 1d03h."""
    s = max(0, int(ms // 1000))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
