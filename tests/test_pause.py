"""Pausing a queue or an actor: its messages are set aside as workers read them, none
lost, and go back to their queues (and run) once resumed; from the API and the CLI."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from streamflow import App, Chain
from streamflow.model.events import TaskStarted
from streamflow.model.messages import shard_of
from streamflow.store import pauses
from tests.helpers import cli, events_of
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

LOOK_S = 0.1
"""How often workers read the pauses in these tests (once a second otherwise; a new
worker reads them before its first message)."""


@pytest.fixture(autouse=True)
def quick_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pauses, "PAUSE_LOOK_S", LOOK_S)


def counted(app: App, r: redis.Redis, queue: str = "default") -> Any:
    @app.actor(queue=queue, actor_name=f"count_{queue}")
    def count(name: str, *piped: Any) -> str:
        r.rpush("ran", name)
        return name

    return count


def ran(r: redis.Redis) -> list[str]:
    return [raw.decode() for raw in r.lrange("ran", 0, -1)]


def parked(app: App, r: redis.Redis, handles: list[Any], queue: str, actor: str) -> int:
    """Messages of ``actor`` on ``queue`` set aside on the shards of ``handles``."""
    shards = {shard_of(h.id) for h in handles}
    return sum(int(r.zcard(app.keys.parked(shard, queue, actor))) for shard in shards)


def test_a_paused_queue_runs_nothing_until_resumed(app: App, r: redis.Redis) -> None:
    slow, fast = counted(app, r, "slow"), counted(app, r, "fast")
    app.pause(queue="slow")
    assert app.paused().queues == {"slow"}
    with app.worker(concurrency=2):
        held = [slow.send(f"s{i}") for i in range(5)]
        assert fast.send("f").get_result(block=True, timeout=10) == "f"
        wait_until(lambda: parked(app, r, held, "slow", "count_slow") == 5, 10)
        assert ran(r) == ["f"]  # the paused queue's five wait
        assert all(not events_of(h.history(), TaskStarted) for h in held)
        app.resume(queue="slow")
        assert [h.get_result(block=True, timeout=10) for h in held] == [f"s{i}" for i in range(5)]
    assert sorted(ran(r)) == ["f", "s0", "s1", "s2", "s3", "s4"]
    assert not app.paused()


def test_a_paused_actor_holds_its_steps_of_a_workflow(app: App, r: redis.Redis) -> None:
    count = counted(app, r)

    @app.actor
    def gate(*piped: Any) -> str:
        r.rpush("ran", "gate")
        return "gate"

    app.pause(actor=gate)
    assert app.paused().actors == {"gate"}
    with app.worker(concurrency=2):
        handle = app.submit(Chain(count.message("a"), gate.message(), count.message("c")))
        other = count.send("other")
        assert other.get_result(block=True, timeout=10) == "other"  # same queue, runs
        wait_until(lambda: parked(app, r, [handle], "default", "gate") == 1, 10)
        assert "a" in ran(r)
        assert handle.status().status == "running" and "gate" not in ran(r)
        app.resume(actor="gate")
        assert handle.get_result(block=True, timeout=10) == "c"
    assert ran(r).index("a") < ran(r).index("gate") < ran(r).index("c")


def test_parked_messages_survive_the_workers_that_parked_them(app: App, r: redis.Redis) -> None:
    count = counted(app, r)
    app.pause(queue="default")
    with app.worker(concurrency=1):
        handles = [count.send(str(i)) for i in range(3)]
        wait_until(lambda: parked(app, r, handles, "default", "count_default") == 3, 10)
    assert ran(r) == []
    app.resume(queue="default")
    with app.worker(concurrency=1):  # another worker: nothing was held by the first
        assert sorted(h.get_result(block=True, timeout=10) for h in handles) == ["0", "1", "2"]


def test_the_sweep_leaves_parked_messages_where_they_are(
    app: App, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paused workflow makes no progress, so the sweep looks at it again and again: its
    message, set aside, is not lost, and sending a copy would run a lone task twice."""
    from structlog.testing import capture_logs

    from streamflow.runtime.sweep import StuckSweep

    count = counted(app, r)
    looked: list[str] = []
    resend = StuckSweep._resend_lost

    def looking(self: StuckSweep, workflow_id: str) -> int:
        looked.append(workflow_id)
        return resend(self, workflow_id)

    monkeypatch.setattr(StuckSweep, "_resend_lost", looking)
    app.pause(queue="default")
    sweeping = {"stuck_after_s": 0.1, "sweep_interval_s": 0.1}
    with capture_logs() as logs, app.worker(concurrency=1, **sweeping):
        handles = [count.send("lone"), app.submit(Chain(count.message("a"), count.message("b")))]
        for handle in handles:
            wait_until(lambda h=handle: looked.count(h.id) >= 3, 10, message=handle.id)
        assert parked(app, r, handles, "default", "count_default") == 2
        app.resume(queue="default")
        assert [h.get_result(block=True, timeout=10) for h in handles] == ["lone", "b"]
    assert sorted(ran(r)) == ["a", "b", "lone"]
    assert not [e for e in logs if e["event"] == "lost_message_resent"]


def test_pausing_needs_a_name(app: App) -> None:
    with pytest.raises(ValueError, match="name a queue or an actor"):
        app.pause()
    with pytest.raises(ValueError, match="not a queue name: 'a:b'"):
        app.pause(queue="a:b")
    with pytest.raises(ValueError, match="not an actor name: ''"):
        app.resume(actor="")
    app.resume(queue="never-paused")  # nothing to undo: no error
    assert not app.paused()


def test_the_cli_pauses_resumes_and_lists(app: App, redis_url: str) -> None:
    assert cli(redis_url, "pause", "--queue", "io").stdout == "paused queue io\n"
    assert cli(redis_url, "pause", "--actor", "report").stdout == "paused actor report\n"
    assert app.paused().queues == {"io"} and app.paused().actors == {"report"}
    assert cli(redis_url, "paused").stdout == "queue  io\nactor  report\n"
    cli(redis_url, "resume", "--queue", "io", "--actor", "report")
    assert cli(redis_url, "paused").stdout == "nothing is paused\n"
    refused = cli(redis_url, "pause", code=1)
    assert refused.stderr == (
        "streamflow pause: ValueError: name a queue or an actor (queue=..., actor=...)\n"
    )
