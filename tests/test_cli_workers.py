"""The roster and ``streamflow workers``: each worker process's card (host, pid, queues,
concurrency, busy slots, version, start, last beat), live while it beats, stopped once
it stops; ``--json`` for scripts."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import pytest
import redis

from streamflow import App, __version__
from streamflow.store import roster
from tests.helpers import cli, hold, watched
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def workers(url: str, *args: str) -> str:
    return cli(url, "workers", *args).stdout


def test_a_worker_is_on_the_roster_while_it_runs_and_after(
    app: App, r: redis.Redis, redis_url: str
) -> None:
    @app.actor(queue="io")
    def gate() -> None:
        hold(r, "open", 30)

    worker = app.worker(concurrency=3)
    with worker:
        gate.send()
        wait_until(lambda: any(c.in_flight == 1 for c in roster.read(app.client, app.keys)), 10)
        (card,) = json.loads(workers(redis_url, "--json"))
        assert card["consumer"] == worker.name and card["state"] == "live"
        assert (card["host"], card["pid"]) == (socket.gethostname(), os.getpid())
        assert (card["queues"], card["concurrency"], card["in_flight"]) == (["io"], 3, 1)
        assert card["version"] == __version__ and card["stopped_ms"] is None
        assert card["started_ms"] <= card["last_beat_ms"]
        table = workers(redis_url)
        assert table.splitlines()[0].split() == [
            "CONSUMER",
            "STATE",
            "QUEUES",
            "BUSY",
            "SHARDS",
            "VERSION",
            "UP",
            "BEAT",
        ]
        row = table.splitlines()[1].split()
        assert row[:6] == [worker.name, "live", "io", "1/3", str(app.shards), __version__]
        r.lpush("open", 1)
    (card,) = json.loads(workers(redis_url, "--json"))
    assert card["state"] == "stopped" and card["stopped_ms"] >= card["started_ms"]


def test_no_worker(app: App, redis_url: str) -> None:
    assert workers(redis_url).startswith("no worker beat within the last hour")
    assert json.loads(workers(redis_url, "--json")) == []


def card_of(consumer: str, last_beat_ms: int) -> roster.WorkerCard:
    return roster.WorkerCard(
        consumer=consumer,
        host=consumer.partition(":")[0],
        pid=1,
        queues=("default",),
        shards=1,
        concurrency=8,
        in_flight=0,
        version="0.0.1",
        started_ms=last_beat_ms - 1000,
        last_beat_ms=last_beat_ms,
    )


def test_cards_of_workers_long_gone_are_forgotten(app: App) -> None:
    now_ms = app.store.now_ms(0)
    card: Any = card_of("old:1:ab", now_ms - 60_000)
    roster.write(app.client, app.keys, card)
    assert roster.read(app.client, app.keys) == [card]
    assert card.state(now_ms=card.last_beat_ms + roster.LIVE_MS) == "live"
    assert card.state(now_ms=card.last_beat_ms + roster.LIVE_MS + 1) == "silent"
    assert roster.forget(app.client, app.keys, before_ms=card.last_beat_ms) == 0
    assert roster.forget(app.client, app.keys, before_ms=card.last_beat_ms + 1) == 1
    assert roster.read(app.client, app.keys) == []


def test_the_roster_is_a_heartbeat_with_a_time_to_live(
    app: App, r: redis.Redis, redis_url: str
) -> None:
    """Each write sets the roster to expire a day later (a roster of workers all gone
    disappears); cards silent for a day are dropped as the roster is read, by whoever
    reads it."""
    now_ms = app.store.now_ms(0)
    gone = card_of("gone:1:ab", now_ms - roster.FORGET_MS - 60_000)
    here = card_of("here:1:ab", now_ms)
    roster.write(app.client, app.keys, gone)
    ttl_ms = r.pttl(app.keys.workers())
    assert roster.FORGET_MS - 60_000 < ttl_ms <= roster.FORGET_MS
    r.pexpire(app.keys.workers(), 1000)
    roster.write(app.client, app.keys, here)  # refreshed at each write
    assert r.pttl(app.keys.workers()) > roster.FORGET_MS - 60_000
    assert roster.read(app.client, app.keys) == [here]
    assert r.hkeys(app.keys.workers()) == [b"here:1:ab"]  # dropped from Redis too
    roster.write(app.client, app.keys, gone)
    listed = json.loads(workers(redis_url, "--json", "--all"))
    assert [card["consumer"] for card in listed] == ["here:1:ab"]
    assert r.hkeys(app.keys.workers()) == [b"here:1:ab"]


def test_watch_redraws_until_interrupted(app: App, redis_url: str) -> None:
    # Three draws, then SIGINT: exit status 130, no traceback.
    lines = watched(redis_url, "workers")
    assert lines == ["no worker beat within the last hour (--all: every one remembered)\n"] * 3
