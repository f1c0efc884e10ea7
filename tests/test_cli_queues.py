"""``streamflow queues``: per queue (and shard), its stream's length, what waits, what is
in flight and for how long, what is delayed, parked by a pause, or dead-lettered."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from streamflow import App
from streamflow.model.messages import shard_of
from streamflow.store import pauses
from tests.helpers import cli, hold, watched
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
            "length": 1,  # the gate's message: the others were handled and deleted
            "waiting": 0,
            "in_flight": 1,  # the gate
            "oldest_in_flight_ms": rows["default"]["oldest_in_flight_ms"],
            "delayed": 1,
            "parked": 1,
            "dead": 1,
        }
        assert rows["default"]["oldest_in_flight_ms"] >= 0
        idle = rows["idle"]
        assert (idle["length"], idle["waiting"], idle["in_flight"]) == (2, 2, 0)
        table = queues(redis_url).splitlines()
        assert table[0].split() == [
            "QUEUE",
            "SHARD",
            "LENGTH",
            "WAITING",
            "IN",
            "FLIGHT",
            "OLDEST",
            "DELAYED",
            "PARKED",
            "DEAD",
        ]
        assert [line.split()[:4] for line in table[1:]] == [
            ["default", "all", "1", "0"],
            ["idle", "all", "2", "2"],
        ]
        shards = json.loads(queues(redis_url, "--json", "--by-shard"))
        assert all(row["shard"] is not None for row in shards)
        assert sum(row["waiting"] for row in shards if row["queue"] == "idle") == 2
        r.lpush("open", 1)
        running.get_result(block=True, timeout=10)


def test_dead_letters_are_counted_on_their_own_shard(r: redis.Redis, redis_url: str) -> None:
    app = App(redis_url, shards=3)
    try:

        @app.actor
        def noop() -> None:
            pass

        with app.worker(concurrency=1):
            # Bytes that are no task message, on shard 2's queue: dead-lettered there.
            for _ in range(2):
                r.xadd(app.keys.queue(2, "default"), {"m": b"not a message"})
            wait_until(lambda: len(app.dead_letters.list(10)) == 2, 10)
        rows = json.loads(queues(redis_url, "--json", "--by-shard"))
        dead = {(row["queue"], row["shard"]): row["dead"] for row in rows}
        assert dead == {("default", 0): 0, ("default", 1): 0, ("default", 2): 2}
        assert by_queue(redis_url)["default"]["dead"] == 2
        # A dead letter whose queue's stream is gone still counts, on its shard.
        r.delete(app.keys.queue(2, "default"))
        rows = json.loads(queues(redis_url, "--json", "--by-shard"))
        gone = [row for row in rows if row["shard"] == 2]
        assert [(row["queue"], row["length"], row["dead"]) for row in gone] == [("default", 0, 2)]
    finally:
        app.close()


def test_watch_redraws_until_interrupted(app: App, redis_url: str) -> None:
    # Three draws, then SIGINT: exit status 130, no traceback.
    lines = watched(redis_url, "queues")
    assert lines == ["no queue holds anything\n"] * 3
