"""``max_age``: a message that waited in its queue longer than that is not run; its task
fails with ``AgeLimitExceeded`` at once (no retry), recorded in the log."""

from __future__ import annotations

import dataclasses
import time

import pytest
import redis

from streamflow import App, ResultFailure
from streamflow.model.definition import Definition, TaskNode
from streamflow.model.events import TaskFailed, TaskStarted
from tests.helpers import definition_of, events_of


def test_a_message_that_waited_too_long_is_not_run(app: App, r: redis.Redis) -> None:
    @app.actor(max_age=0.2, max_retries=3)
    def perishable() -> str:
        r.incr("ran")
        return "fresh"

    handle = perishable.send()  # no worker yet: it waits in its queue
    time.sleep(0.4)
    with app.worker(concurrency=1), pytest.raises(ResultFailure) as failure:
        handle.get_result(block=True, timeout=10)
    assert failure.value.exception_type == "AgeLimitExceeded"
    assert "max_age of 200 ms" in failure.value.error["message"]
    assert r.get("ran") is None  # the body never ran
    history = handle.history()
    (failed,) = events_of(history, TaskFailed)
    assert failed.error["type"] == "AgeLimitExceeded" and failed.retry_delay_ms is None
    assert len(events_of(history, TaskStarted)) == 1  # no retry, whatever max_retries says


def test_a_message_taken_in_time_runs(app: App) -> None:
    @app.actor(max_age=5)
    def perishable() -> str:
        return "fresh"

    with app.worker(concurrency=1):
        assert perishable.send().get_result(block=True, timeout=10) == "fresh"


def test_a_delay_is_not_counted(app: App) -> None:
    @app.actor
    def perishable() -> str:
        return "fresh"

    message = perishable.message_with_options(delay=0.5, max_age=0.3, pipe_ignore=True)
    with app.worker(concurrency=1):
        assert app.submit(message).get_result(block=True, timeout=10) == "fresh"


def test_a_messages_max_age_is_recorded_in_its_definition(app: App) -> None:
    @app.actor(max_age=60)
    def perishable() -> str:
        return "fresh"

    with app.worker(concurrency=1):
        handle = app.submit(perishable.message_with_options(max_age=30, pipe_ignore=True))
        handle.get_result(block=True, timeout=10)
    (task,) = [n for n in definition_of(app, handle.history()).nodes if isinstance(n, TaskNode)]
    assert task.options.max_age_ms == 30_000
    assert perishable.options.max_age_ms == 60_000


def test_definitions_without_max_age_keep_their_bytes(app: App) -> None:
    @app.actor
    def plain() -> None:
        pass

    with app.worker(concurrency=1):
        handle = plain.send()
        handle.get_result(block=True, timeout=10)
    definition = definition_of(app, handle.history())
    (task,) = [n for n in definition.nodes if isinstance(n, TaskNode)]
    aged = dataclasses.replace(task, options=dataclasses.replace(task.options, max_age_ms=1))
    with_age = dataclasses.replace(definition, nodes=(aged,))
    assert Definition.from_bytes(with_age.to_bytes).nodes[0] == aged
    assert Definition.from_bytes(definition.to_bytes) == definition
    assert len(with_age.to_bytes) > len(definition.to_bytes)  # the field only when set


@pytest.mark.parametrize("max_age", [-1, "soon"])
def test_a_wrong_max_age_is_refused_naming_it(app: App, max_age: object) -> None:
    with pytest.raises(ValueError, match="max_age"):
        app.actor(max_age=max_age)(lambda: None)  # type: ignore[arg-type]
