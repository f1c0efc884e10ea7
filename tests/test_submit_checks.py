"""A submit checks what it can before it writes: a reused id with another canvas, an id
on a shard the App has not got, a canvas only its history budget could fail, nesting too
deep, arguments the actor cannot take, durations that look like milliseconds. Each
refused submit leaves Redis as it was."""

from __future__ import annotations

import datetime
import os
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import redis

from streamflow import (
    App,
    Chain,
    DefinitionError,
    Group,
    HistoryBudget,
    WithDelay,
    WorkflowIdConflict,
)
from streamflow.api.canvas import MAX_NESTING

pytestmark = pytest.mark.integration


@pytest.fixture
def add(app: App) -> Any:
    @app.actor
    def add(a: int, b: int = 0) -> int:
        return a + b

    return add


def _nothing_written(r: redis.Redis, submit: Callable[[], Any], error: type[Exception]) -> str:
    """Run ``submit``, which must raise ``error`` and leave every key as it was."""
    before = {key: r.type(key) for key in r.scan_iter(count=1000)}
    lengths = {key: r.xlen(key) for key, kind in before.items() if kind == b"stream"}
    with pytest.raises(error) as info:
        submit()
    assert {key: r.type(key) for key in r.scan_iter(count=1000)} == before
    assert {key: r.xlen(key) for key in lengths} == lengths
    return str(info.value)


def test_a_reused_id_takes_the_same_canvas_only(app: App, r: redis.Redis, add: Any) -> None:
    workflow_id = app.new_workflow_id()
    app.submit(Chain(add.message(1), add.message(2)), workflow_id=workflow_id)
    # The same canvas and arguments: an idempotent retry, nothing written again.
    app.submit(Chain(add.message(1), add.message(2)), workflow_id=workflow_id)
    assert len(app.history(workflow_id)) == 2

    another = Chain(add.message(1), add.message(2), add.message(3))
    message = _nothing_written(
        r, lambda: app.submit(another, workflow_id=workflow_id), WorkflowIdConflict
    )
    assert repr(workflow_id) in message
    other_args = Chain(add.message(1), add.message(5))
    _nothing_written(r, lambda: app.submit(other_args, workflow_id=workflow_id), ValueError)


def test_an_id_on_a_shard_the_app_has_not_got_is_refused(
    app: App, r: redis.Redis, add: Any
) -> None:
    beyond = app.shards + 2
    message = _nothing_written(
        r, lambda: app.submit(add.message(1), workflow_id=f"{beyond}-" + "ab" * 12), ValueError
    )
    assert f"shard {beyond}" in message and f"{app.shards} shard" in message
    with pytest.raises(ValueError, match="'nope'"):
        app.submit(add.message(1), workflow_id="nope")


def test_a_canvas_over_its_history_budget_is_refused_before_any_write(
    redis_url: str, r: redis.Redis
) -> None:
    app = App(redis_url, history_budget=HistoryBudget(warn_events=10, max_events=30))
    try:

        @app.actor
        def echo(value: Any) -> Any:
            return value

        message = _nothing_written(
            r, lambda: app.submit(Group(*(echo.message(i) for i in range(10)))), DefinitionError
        )
        assert "10 tasks" in message and "max_events=30" in message
        app.submit(Group(*(echo.message(i) for i in range(9))))  # 29 events: it fits

        large = echo.message(os.urandom(2_000))  # incompressible
        small_bytes = HistoryBudget(warn_bytes=500, max_bytes=1_000)
        app.history_budget = small_bytes
        message = _nothing_written(r, lambda: app.submit(large), DefinitionError)
        assert "max_bytes=1,000" in message
    finally:
        app.close()


def test_a_group_of_twenty_thousand_fails_on_the_default_budget_at_submit(
    app: App, r: redis.Redis, add: Any
) -> None:
    huge = Group(*(add.message(i) for i in range(20_000)))  # 60,002 events at least
    assert "max_events=50,000" in _nothing_written(r, lambda: app.submit(huge), DefinitionError)


def _nested(add: Any, depth: int) -> Any:
    canvas = add.message(1)
    for level in range(depth - 1):
        canvas = Group(canvas) if level % 2 else Chain(add.message(1), canvas)
    return canvas


def test_nesting_runs_to_its_limit_and_is_refused_past_it(
    app: App, r: redis.Redis, add: Any
) -> None:
    with app.worker():
        handle = app.submit(_nested(add, MAX_NESTING))
        result = handle.get_result(block=True, timeout=60)
    for _ in range(MAX_NESTING // 2 - 1):  # each of the 49 groups wraps it in a list
        (result,) = result
    assert result == 1 + MAX_NESTING // 2  # each of the 50 chains added one
    message = _nothing_written(
        r, lambda: app.submit(_nested(add, MAX_NESTING + 1)), DefinitionError
    )
    assert f"{MAX_NESTING + 1} levels" in message
    deep = _nothing_written(r, lambda: app.submit(_nested(add, 5_000)), DefinitionError)
    assert "5000 levels" in deep  # never a RecursionError


def test_arguments_are_checked_against_the_signature(app: App, add: Any) -> None:
    add.message(1)  # b is piped in, or takes its default
    add.message(1, 2)
    add.message_with_options(args=(1,), pipe_ignore=True)
    with pytest.raises(TypeError, match=r"actor 'add' takes \(a, b=0\): too many positional"):
        add.message(1, 2, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'c'"):
        add.message(1, c=3)
    with pytest.raises(TypeError, match="missing a required argument: 'a'"):
        add.message_with_options(pipe_ignore=True)  # nothing piped in: a is missing
    with pytest.raises(TypeError, match="missing a required argument: 'a'"):
        add.send()


def test_durations_that_look_like_milliseconds_warn(app: App) -> None:
    with pytest.warns(UserWarning, match=r"time_limit=5000 is 5000 seconds .* pass 5;") as seen:

        @app.actor(time_limit=5000)
        def slow() -> None: ...

    assert seen[0].filename == __file__  # the warning points at the user's line
    with pytest.warns(UserWarning, match="min_backoff=2000"):
        app.actor(lambda: None, actor_name="backs_off", min_backoff=2000)
    with pytest.warns(UserWarning, match="delay=1500"):
        WithDelay(slow.message(), 1500)
    with pytest.warns(UserWarning, match="delay=1500"):
        slow.message_with_options(delay=1500)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # meant: a float, a timedelta, or short enough
        app.actor(lambda: None, actor_name="hour", time_limit=3600.0)
        app.actor(lambda: None, actor_name="day", time_limit=datetime.timedelta(days=1))
        app.actor(lambda: None, actor_name="minute", time_limit=60)
