"""``priority``: among the messages a worker fetched, lower numbers start first (a level
is worth a second of waiting, so none starves); recorded in the workflow's definition."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from streamflow import App
from streamflow.model.definition import TaskNode
from streamflow.model.messages import shard_of
from tests.helpers import definition_of, hold
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def all_delivered(r: redis.Redis, queue: str) -> bool:
    """Whether the workers' group was handed every message of ``queue``."""
    try:
        (group,) = r.xinfo_groups(queue)
    except (redis.ResponseError, ValueError):  # the worker has not made its group yet
        return False
    return bool(group["last-delivered-id"] == r.xinfo_stream(queue)["last-generated-id"])


def test_fetched_messages_start_by_priority(app: App, r: redis.Redis) -> None:
    @app.actor
    def gate() -> None:
        hold(r, "open", 30)

    @app.actor(priority=10)
    def chore(name: str) -> None:
        r.rpush("ran", name)

    with app.worker(concurrency=1):  # one thread: the gate holds it
        handles = [gate.send()]
        waiting = [chore.send("later-1"), chore.send("later-2")]
        urgent = app.submit(chore.message_with_options(args=("urgent",), priority=-1))
        handles += [*waiting, urgent]
        queues = {app.keys.queue(shard_of(h.id), "default") for h in handles}
        # All delivered to the worker: the gate running, three waiting for the thread.
        wait_until(lambda: all(all_delivered(r, queue) for queue in queues), 10)
        time.sleep(0.5)  # and started (a round trip after their delivery), queued
        r.lpush("open", 1)
        for handle in [*waiting, urgent]:
            handle.get_result(block=True, timeout=10)
    assert [raw.decode() for raw in r.lrange("ran", 0, -1)] == ["urgent", "later-1", "later-2"]


def test_priority_is_recorded_in_the_definition(app: App) -> None:
    @app.actor(priority=3)
    def chore(*piped: Any) -> None:
        pass

    with app.worker(concurrency=1):
        handle = app.submit(chore.message_with_options(priority=-2, pipe_ignore=True))
        handle.get_result(block=True, timeout=10)
    (task,) = [n for n in definition_of(app, handle.history()).nodes if isinstance(n, TaskNode)]
    assert (task.options.priority, chore.options.priority) == (-2, 3)


@pytest.mark.parametrize("priority", [1.5, "high", True])
def test_a_priority_that_is_not_a_whole_number_is_refused(app: App, priority: Any) -> None:
    with pytest.raises(ValueError, match="priority must be a whole number"):
        app.actor(priority=priority)(lambda: None)
