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
from tests.helpers import cli, hold
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


def test_cards_of_workers_long_gone_are_forgotten(app: App) -> None:
    card: Any = roster.WorkerCard(
        consumer="old:1:ab",
        host="old",
        pid=1,
        queues=("default",),
        shards=1,
        concurrency=8,
        in_flight=0,
        version="0.0.1",
        started_ms=1,
        last_beat_ms=1000,
    )
    roster.write(app.client, app.keys, card)
    assert roster.read(app.client, app.keys) == [card]
    assert card.state(now_ms=1000 + roster.LIVE_MS) == "live"
    assert card.state(now_ms=1001 + roster.LIVE_MS) == "silent"
    assert roster.forget(app.client, app.keys, before_ms=1000) == 0
    assert roster.forget(app.client, app.keys, before_ms=1001) == 1
    assert roster.read(app.client, app.keys) == []
