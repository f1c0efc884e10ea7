"""The timer's tick: one look at the first member of every delayed set, and the move
script only where something is due (a quiet cluster of 48 shards costs 96 cheap reads a
tick, not 96 scripts)."""

from __future__ import annotations

import pytest
import redis

from streamflow import App
from streamflow.runtime.timer import first_score, move_due
from tests.helpers import command_calls

pytestmark = pytest.mark.integration


def test_first_score_reads_both_protocols() -> None:
    assert first_score([]) is None
    assert first_score([b"m", b"12.5"]) == 12.5  # RESP2
    assert first_score([[b"m", 12.5]]) == 12.5  # RESP3


def test_a_quiet_tick_runs_no_script_and_a_due_member_moves(app: App, r: redis.Redis) -> None:
    shards, queues = range(app.shards), ["default", "other"]
    now = app.store.now_ms(0)
    due, later = app.keys.delayed(0, "other"), app.keys.wake_due(0)
    r.zadd(later, {b"a wake-up": now + 60_000})
    for message in (b"first", b"second"):  # the first loads the script on a fresh server
        r.zadd(due, {message: now - 10})
        before = command_calls(r)
        assert move_due(app.store, shards, queues) == 1
    spent = {k: v - before.get(k, 0) for k, v in command_calls(r).items()}
    assert spent["evalsha"] == 1  # the due set's only
    moved = [fields for _, fields in r.xrange(app.keys.queue(0, "other"))]
    assert moved == [{b"m": b"first"}, {b"m": b"second"}]
    assert r.zcard(later) == 1  # not due

    before = command_calls(r)
    assert move_due(app.store, shards, queues) == 0
    spent = {k: v - before.get(k, 0) for k, v in command_calls(r).items()}
    assert spent.get("evalsha", 0) == 0
    assert spent["zrange"] == app.shards * 3  # two queues and the wake-ups, per shard
