"""``on_retry_exhausted``: a callback that runs when a message failed for good because
its retries were used up (or ``retry_when`` declined one), not for ``throws``; recorded
in the log (``TaskFailed.exhausted``), a task of the workflow like the other callbacks."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from streamflow import App, Failure, Group, ResultFailure
from streamflow.model.events import TaskEnqueued, TaskFailed
from streamflow.testing import actor as bare_actor
from streamflow.testing import run
from tests.helpers import events_of
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def actors(app: App, r: redis.Redis) -> dict[str, Any]:
    @app.actor(max_retries=2, min_backoff=0.01)
    def flaky() -> None:
        raise ValueError("still broken")

    @app.actor(max_retries=5, min_backoff=0.01, throws=KeyError)
    def missing() -> None:
        raise KeyError("no such thing")

    @app.actor(min_backoff=0.01, retry_when=lambda retries, exc: retries < 1)
    def picky() -> None:
        raise ValueError("no")

    @app.actor
    def ok() -> str:
        return "fine"

    @app.actor
    def exhausted(message_data: dict[str, Any], retry_info: dict[str, Any]) -> None:
        r.rpush("exhausted", json.dumps([message_data, retry_info]))

    return {f.name: f for f in (flaky, missing, picky, ok, exhausted)}


def calls(r: redis.Redis) -> list[Any]:
    return [json.loads(raw) for raw in r.lrange("exhausted", 0, -1)]


def test_it_runs_with_the_retry_info_when_the_retries_are_used_up(
    app: App, actors: dict[str, Any], r: redis.Redis
) -> None:
    message = actors["flaky"].message_with_options(on_retry_exhausted="exhausted")
    with app.worker(concurrency=2):
        handle = app.submit(message)
        with pytest.raises(ResultFailure):
            handle.get_result(block=True, timeout=30)
        wait_until(lambda: calls(r), 30)
        wait_until(lambda: handle.status().archived, 30)  # after the callback
    ((data, info),) = calls(r)
    assert data["actor_name"] == "flaky"
    assert (info["retries"], info["max_retries"]) == (2, 2)
    assert (info["type"], info["message"]) == ("ValueError", "still broken")
    failures = events_of(handle.history(), TaskFailed)
    assert [f.exhausted for f in failures] == [False, False, True]  # the last, in the log


def test_a_retry_when_that_declines_exhausts_too(
    app: App, actors: dict[str, Any], r: redis.Redis
) -> None:
    message = actors["picky"].message_with_options(on_retry_exhausted=actors["exhausted"])
    with app.worker(concurrency=2):
        with pytest.raises(ResultFailure):
            app.submit(message).get_result(block=True, timeout=30)
        wait_until(lambda: calls(r), 30)
    ((_, info),) = calls(r)
    assert info["retries"] == 1


def test_throws_and_success_do_not_run_it(app: App, actors: dict[str, Any], r: redis.Redis) -> None:
    canvas = Group(
        actors["missing"].message_with_options(on_retry_exhausted="exhausted", allow_failure=True),
        actors["ok"].message_with_options(on_retry_exhausted="exhausted"),
    )
    with app.worker(concurrency=2):
        handle = app.submit(canvas)
        failed, fine = handle.get_result(block=True, timeout=30)
    assert isinstance(failed, Failure) and fine == "fine"
    assert calls(r) == []
    enqueued = {e.node for e in events_of(handle.history(), TaskEnqueued)}
    assert enqueued == {0, 2}  # the two messages; neither callback
    (failure,) = events_of(handle.history(), TaskFailed)
    assert not failure.exhausted


def test_allow_failure_completes_after_the_callback(
    app: App, actors: dict[str, Any], r: redis.Redis
) -> None:
    message = actors["flaky"].message_with_options(
        on_retry_exhausted="exhausted", allow_failure=True
    )
    with app.worker(concurrency=2):
        result = app.submit(message).get_result(block=True, timeout=30)
    assert isinstance(result, Failure)
    assert len(calls(r)) == 1  # completed only once the callback had run


def test_a_name_no_actor_has_is_refused(app: App, actors: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="on_retry_exhausted names actor 'nobody'"):
        actors["flaky"].message_with_options(on_retry_exhausted="nobody")


def test_the_simulator_runs_it_too() -> None:
    seen: list[Any] = []

    @bare_actor(max_retries=1)
    def broken() -> None:
        raise ValueError("sim")

    @bare_actor
    def report(message_data: dict[str, Any], retry_info: dict[str, Any]) -> None:
        seen.append(retry_info)

    result = run(broken.message_with_options(on_retry_exhausted=report), seed=1)
    assert result.status == "failed"
    assert [(i["retries"], i["max_retries"], i["message"]) for i in seen] == [(1, 1, "sim")]
