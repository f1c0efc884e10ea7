"""One failure model at every nesting: workflow failure, allow_failure, callbacks."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from streamflow import App, Chain, Failure, Group, ResultFailure
from streamflow.model.events import TaskEnqueued, WorkflowFailed
from tests.helpers import events_of
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def actors(app: App, r: redis.Redis) -> dict[str, Any]:
    @app.actor
    def value(x: Any, *piped: Any) -> Any:
        return x

    @app.actor
    def fails(*piped: Any) -> None:
        raise ValueError("broken")

    @app.actor
    def collect(*piped: Any) -> Any:
        return [repr(p) if isinstance(p, Failure) else p for p in piped[-1]]

    @app.actor
    def record(*args: Any) -> None:
        r.rpush("recorded", json.dumps(args, default=repr))

    return {f.name: f for f in (value, fails, collect, record)}


def recorded(r: redis.Redis) -> list[Any]:
    return [json.loads(item) for item in r.lrange("recorded", 0, -1)]


def test_nested_failure_fails_once_and_runs_on_failure_with_partial_results(
    app: App, actors: dict[str, Any], r: redis.Redis
) -> None:
    value, fails = actors["value"], actors["fails"]
    canvas = Chain(
        value.message("a"),
        Group(value.message("b"), Chain(value.message("c"), fails.message())),
        value.message("d"),
    )
    with app.worker(concurrency=4):
        handle = app.submit(canvas, on_failure=actors["record"])
        with pytest.raises(ResultFailure, match="broken") as info:
            handle.get_result(block=True, timeout=30)
        wait_until(lambda: r.llen("recorded") == 1, 30, message="on_failure to run")
        wait_until(lambda: handle.status().archived, 30, message="archive")
    assert info.value.actor == "fails"
    history = handle.history()
    assert len(events_of(history, WorkflowFailed)) == 1
    d_node = len(app.definitions.get(history[0].event.def_hash, handle.id).nodes) - 2
    assert d_node not in {e.node for e in events_of(history, TaskEnqueued)}
    ((failure, partial),) = recorded(r)
    assert failure["type"] == "ValueError"
    assert failure["actor"] == "fails"
    # Every task's value in canvas shape: d never ran; the failed task is a Failure.
    assert partial[0] == "a" and partial[1][0] == "b" and partial[2] is None
    assert partial[1][1][0] == "c"
    assert partial[1][1][1].startswith("Failure(actor='fails'")
    a, (b, (c, failed)), d = handle.partial_results()
    assert (a, b, c, d) == ("a", "b", "c", None)
    assert isinstance(failed, Failure) and failed.message == "broken"


def test_allow_failure_yields_a_failure_value_and_goes_on(app: App, actors: dict[str, Any]) -> None:
    value, fails = actors["value"], actors["fails"]
    canvas = Chain(
        Group(value.message(1), fails.message_with_options(allow_failure=True)),
        actors["collect"].message(),
    )
    with app.worker(concurrency=4):
        result = app.submit(canvas).get_result(block=True, timeout=30)
    assert result[0] == 1
    assert result[1].startswith("Failure(actor='fails'")
    assert "type='ValueError'" in result[1]


def test_allow_failure_at_the_end_is_in_the_result(app: App, actors: dict[str, Any]) -> None:
    canvas = Group(
        actors["value"].message(1), actors["fails"].message_with_options(allow_failure=True)
    )
    with app.worker(concurrency=2):
        ok, failed = app.submit(canvas).get_result(block=True, timeout=30)
    assert ok == 1
    assert isinstance(failed, Failure)
    assert (failed.actor, failed.type, failed.message) == ("fails", "ValueError", "broken")


def test_message_callbacks(app: App, actors: dict[str, Any], r: redis.Redis) -> None:
    value, fails, record = actors["value"], actors["fails"], actors["record"]
    canvas = Chain(
        value.message_with_options(args=(7,), on_success=record, on_failure=record),
        fails.message_with_options(allow_failure=True, on_failure=record),
    )
    with app.worker(concurrency=2):
        handle = app.submit(canvas)
        assert isinstance(handle.get_result(block=True, timeout=30), Failure)
    calls = recorded(r)
    assert len(calls) == 2
    success = next(c for c in calls if c[0]["actor_name"] == "value")
    assert success[0]["args"] == [7]
    assert success[1] == 7
    failure = next(c for c in calls if c[0]["actor_name"] == "fails")
    assert failure[1]["type"] == "ValueError"
    assert failure[1]["message"] == "broken"


def test_on_failure_callback_runs_after_the_workflow_failed(
    app: App, actors: dict[str, Any], r: redis.Redis
) -> None:
    canvas = actors["fails"].message_with_options(on_failure=actors["record"])
    with app.worker(concurrency=2):
        handle = app.submit(canvas)
        with pytest.raises(ResultFailure):
            handle.get_result(block=True, timeout=30)
        wait_until(lambda: handle.status().archived, 30, message="archive after callback")
    ((data, failure),) = recorded(r)
    assert data["actor_name"] == "fails"
    assert failure["message"] == "broken"
    history = handle.history()
    end = next(e.seq for e in history if isinstance(e.event, WorkflowFailed))
    assert history[-1].seq > end  # the callback's events follow the end


def test_callback_failure_is_recorded_not_fatal(app: App, actors: dict[str, Any]) -> None:
    value, fails = actors["value"], actors["fails"]
    canvas = value.message_with_options(args=(5,), on_success=fails)
    with app.worker(concurrency=2):
        assert app.submit(canvas).get_result(block=True, timeout=30) == 5
