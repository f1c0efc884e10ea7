"""Live views of a deployment: ``streamflow workers`` and ``streamflow queues``. Each
takes ``--json``; ``--watch S`` redraws every S seconds until interrupted."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence

from streamflow.cli.common import connect
from streamflow.store import roster
from streamflow.store.queues import QueueStats, queue_stats, totals

RECENT_MS = 3600 * 1000
"""Workers that stopped (or went silent) within this long are listed too."""


def cmd_workers(args: argparse.Namespace) -> int:
    app = connect(args)

    def draw() -> str:
        now_ms = app.store.now_ms(0)
        cards = [
            card
            for card in roster.read(app.client, app.keys)
            if args.all
            or now_ms - (card.stopped_ms or card.last_beat_ms) <= RECENT_MS
            or card.state(now_ms) == "live"
        ]
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
        head = ("QUEUE", "SHARD", "WAITING", "IN FLIGHT", "OLDEST", "DELAYED", "PARKED", "DEAD")
        rows: list[tuple[str, ...]] = [head, *(_queue_row(each) for each in shown)]
        if len(rows) == 1:
            return "no queue holds anything"
        return _table(rows)

    return watch(draw, args.watch)


def _queue_row(each: QueueStats) -> tuple[str, ...]:
    oldest = each.oldest_in_flight_ms
    return (
        each.queue,
        "all" if each.shard is None else str(each.shard),
        str(each.waiting),
        str(each.in_flight),
        "-" if oldest is None else _duration(oldest),
        str(each.delayed),
        str(each.parked),
        str(each.dead),
    )


def watch(draw: Callable[[], str], every_s: float | None) -> int:
    """Print ``draw()``; with ``every_s``, again every ``every_s`` seconds in place (on
    a terminal), until interrupted."""
    if every_s is None:
        print(draw())
        return 0
    while True:
        text = draw()
        if sys.stdout.isatty():
            sys.stdout.write("\x1b[H\x1b[2J")  # home, clear: redraw in place
        print(text, flush=True)
        time.sleep(every_s)


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
