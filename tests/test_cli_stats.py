"""``streamflow stats``: what the workers did over the last minutes, from the counts each
worker adds into Redis (no Prometheus needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from streamflow import App, group
from streamflow.store import stats
from tests.helpers import cli, watched

pytestmark = pytest.mark.integration


def test_stats_count_each_outcome_per_actor(app: App, r: redis.Redis, redis_url: str) -> None:
    @app.actor
    def fine(x: int) -> int:
        return x

    @app.actor(max_retries=1, min_backoff=0.01)
    def flaky() -> None:
        if r.incr("flaky") == 1:
            raise RuntimeError("first time only")

    @app.actor(queue="risky")
    def broken() -> None:
        raise RuntimeError("always")

    assert cli(redis_url, "stats").stdout.startswith("last 5 min: 0 attempts ended")
    with app.worker(concurrency=2, queues=["default", "risky"]):
        handles = [fine.send(i) for i in range(5)]
        handles += [app.submit(group([flaky.message()])), broken.send()]
        for handle in handles:
            handle.wait(timeout=30)
    # A worker adds its counts every 2 s, and once more as it stops.

    window = json.loads(cli(redis_url, "stats", "--json").stdout)
    rows = {row["actor"]: row for row in window["tasks"]}
    assert _counts(rows["fine"]) == ("default", 5, 0, 0)
    assert _counts(rows["flaky"]) == ("default", 1, 1, 0)
    assert _counts(rows["broken"]) == ("risky", 0, 0, 1)
    assert _counts(window["total"]) == ("", 6, 1, 1)
    assert window["workflows"] == {"completed": 6, "failed": 1}
    for row in rows.values():
        # A percentile is a bucket's upper bound: a known one, never below the mean.
        assert row["run_ms_p95"] in [*stats.BUCKETS_MS, float("inf")]
        assert row["run_ms_p95"] >= row["mean_run_ms"] >= 0
        assert row["wait_ms_p50"] <= row["wait_ms_p95"]

    table = cli(redis_url, "stats", "--minutes", "2").stdout.splitlines()
    assert table[0].startswith("last 2 min: 8 attempts ended")
    assert "6 succeeded, 1 retried, 1 failed" in table[0]
    assert "workflows ended: 6 completed, 1 failed" in table[0]
    assert table[2].split()[:3] == ["QUEUE", "ACTOR", "PER"]
    body = [line.split() for line in table[3:]]
    assert [(b[0], b[1], *b[3:6]) for b in body] == [
        ("default", "fine", "5", "0", "0"),
        ("default", "flaky", "1", "1", "0"),
        ("risky", "broken", "0", "0", "1"),
    ]

    bad = cli(redis_url, "stats", "--minutes", "0", code=1)
    assert bad.stderr == "streamflow stats: ValueError: --minutes must be at least 1 (got 0)\n"


def _counts(row: dict[str, Any]) -> tuple[str, int, int, int]:
    return row["queue"], row["succeeded"], row["retried"], row["failed"]


def test_percentiles_are_read_off_the_buckets() -> None:
    each = stats.TaskStats(queue="q", actor="a")
    for ms, n in ((3, 50), (40, 45), (70_000, 5)):
        each.merge("run" + stats.bucket(ms), n)
    assert [stats.bucket(ms) for ms in (0, 1, 1.5, 60_000, 60_001)] == [
        "1",
        "1",
        "2",
        "60000",
        "inf",
    ]
    assert each.run_percentile(0.5) == 5
    assert each.run_percentile(0.95) == 50
    assert each.run_percentile(0.99) == float("inf")
    assert each.wait_percentile(0.5) is None


def test_watch_redraws_until_interrupted(app: App, redis_url: str) -> None:
    # Three draws, then SIGINT: exit status 130, no traceback.
    lines = watched(redis_url, "stats", "--minutes", "2")
    quiet = "last 2 min: 0 attempts ended (0.0/s): 0 succeeded, 0 retried, 0 failed; "
    assert lines == [quiet + "workflows ended: none\n"] * 3
