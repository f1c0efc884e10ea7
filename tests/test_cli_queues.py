"""``streamflow queues``: per queue (and shard), what waits, what is in flight and for how
long, what is delayed, parked by a pause, or dead-lettered."""

from __future__ import annotations

import json
import signal
import subprocess
from typing import Any

import pytest
import redis

from streamflow import App
from streamflow.model.messages import shard_of
from streamflow.store import pauses
from tests.helpers import CLI, cli, hold
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def queues(url: str, *args: str) -> str:
    return cli(url, "queues", *args).stdout


def by_queue(url: str, *args: str) -> dict[str, dict[str, Any]]:
    return {row["queue"]: row for row in json.loads(queues(url, "--json", *args))}


def test_what_each_queue_holds(
    app: App, r: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pauses, "PAUSE_LOOK_S", 0.1)

    @app.actor
    def gate() -> None:
        hold(r, "open", 30)

    @app.actor
    def later() -> None:
        pass

    @app.actor
    def held() -> None:
        pass

    @app.actor(queue="idle")
    def unread() -> None:
        pass

    assert queues(redis_url) == "no queue holds anything\n"
    app.pause(actor=held)
    with app.worker(concurrency=1, queues=["default"]):
        running = gate.send()
        app.submit(later.message_with_options(delay=60))
        parked = held.send()
        unread.send()
        unread.send()
        r.xadd(app.keys.queue(shard_of(running.id), "default"), {"m": b"not a message"})
        wait_until(lambda: app.dead_letters.list(10), 10)
        park_key = app.keys.parked(shard_of(parked.id), "default", "held")
        wait_until(lambda: r.zcard(park_key) == 1, 10)
        rows = by_queue(redis_url)
        assert rows["default"] == {
            "queue": "default",
            "shard": None,
            "waiting": 0,
            "in_flight": 1,  # the gate
            "oldest_in_flight_ms": rows["default"]["oldest_in_flight_ms"],
            "delayed": 1,
            "parked": 1,
            "dead": 1,
        }
        assert rows["default"]["oldest_in_flight_ms"] >= 0
        assert (rows["idle"]["waiting"], rows["idle"]["in_flight"]) == (2, 0)
        table = queues(redis_url).splitlines()
        assert table[0].split() == [
            "QUEUE",
            "SHARD",
            "WAITING",
            "IN",
            "FLIGHT",
            "OLDEST",
            "DELAYED",
            "PARKED",
            "DEAD",
        ]
        assert [line.split()[:3] for line in table[1:]] == [
            ["default", "all", "0"],
            ["idle", "all", "2"],
        ]
        shards = json.loads(queues(redis_url, "--json", "--by-shard"))
        assert all(row["shard"] is not None for row in shards)
        assert sum(row["waiting"] for row in shards if row["queue"] == "idle") == 2
        r.lpush("open", 1)
        running.get_result(block=True, timeout=10)


def test_watch_redraws_until_interrupted(app: App, redis_url: str) -> None:
    watching = subprocess.Popen(
        [*CLI, "queues", "--watch", "0.1", "--url", redis_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watching.stdout is not None
    lines = [watching.stdout.readline() for _ in range(3)]  # three draws
    watching.send_signal(signal.SIGINT)
    _, err = watching.communicate(timeout=30)
    assert lines == ["no queue holds anything\n"] * 3
    assert watching.returncode == 130 and err == ""  # no traceback
