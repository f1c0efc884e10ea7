"""The history budget: a warning past its first size, a failure past its limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, Chain, Group, HistoryBudget, ResultFailure, audit, replay
from streamflow.api.actors import Actor
from streamflow.api.compile import compile_canvas
from streamflow.model.decide import HISTORY_LIMIT_EXCEEDED, decide
from streamflow.model.events import (
    Entry,
    HistoryWarning,
    TaskEnqueued,
    TaskSucceeded,
    WorkflowFailed,
    WorkflowSubmitted,
)
from streamflow.model.options import ActorOptions
from streamflow.model.state import fold_all
from tests.helpers import definition_of

pytestmark = pytest.mark.integration


@pytest.fixture
def small(r: redis.Redis, redis_url: str) -> Iterator[App]:
    application = App(redis_url, history_budget=HistoryBudget(warn_events=10, max_events=30))
    yield application
    application.close()


def test_a_long_workflow_is_warned_about_then_failed(small: App, r: redis.Redis) -> None:
    @small.actor
    def step(x: int) -> int:
        return x + 1

    # Nine steps fit the budget at submit (at least 29 events); the barriers between
    # them take the log past it as it runs.
    canvas = Chain(step.message(0), *(step.message() for _ in range(8)))
    with capture_logs() as logs, small.worker(concurrency=2):
        handle = small.submit(canvas)
        with pytest.raises(ResultFailure) as info:
            handle.result(timeout=30)
    assert info.value.error["type"] == HISTORY_LIMIT_EXCEEDED
    assert "over its limit of 30 events" in str(info.value)
    history = handle.history()
    warnings = [e for e in history if isinstance(e.event, HistoryWarning)]
    assert len(warnings) == 1
    assert warnings[0].event.events >= 10  # type: ignore[attr-defined]
    warned = warnings[0].event
    assert warned.bytes == sum(e.size for e in history if e.seq <= warned.events)
    (end,) = [e for e in history if isinstance(e.event, WorkflowFailed)]
    assert end.seq >= 30
    # Nothing enqueued after the failure, and the log is as clean as any other.
    assert not any(isinstance(e.event, TaskEnqueued) for e in history if e.seq > end.seq)
    assert audit(history, definition_of(small, history)) == []
    assert replay(history, definition_of(small, history)) == []
    events = [log["event"] for log in logs]
    assert events.count("history_budget_warning") == 1
    assert "history_limit_exceeded" in events


def test_a_wide_group_past_its_warning_still_fails_at_its_limit(
    redis_url: str, r: redis.Redis
) -> None:
    # Members' successes short of the barrier are acknowledged without a projection
    # below the next count the budget acts at: the warning's, then the limit's.
    # 32 members fit the budget at submit (at least 98 events); two retries take the
    # log past it (104 events); up to 4 x 4 starts may precede the first outcome.
    app = App(redis_url, history_budget=HistoryBudget(warn_events=10, max_events=100))

    @app.actor(max_retries=1, min_backoff=0.01)
    def member(i: int) -> int:
        if i < 2 and r.incr(f"tries:{i}") == 1:
            raise RuntimeError("once")
        return i

    try:
        with app.worker(concurrency=4):
            handle = app.submit(Group(*(member.message(i) for i in range(32))))
            with pytest.raises(ResultFailure) as info:
                handle.result(timeout=30)
        assert info.value.error["type"] == HISTORY_LIMIT_EXCEEDED
        history = handle.history()
        assert sum(isinstance(e.event, HistoryWarning) for e in history) == 1
        (end,) = [e for e in history if isinstance(e.event, WorkflowFailed)]
        assert end.seq >= 100
        assert audit(history, definition_of(app, history)) == []
        assert replay(history, definition_of(app, history)) == []
    finally:
        app.close()


def test_the_default_budget_leaves_ordinary_workflows_alone(app: App) -> None:
    @app.actor
    def step(x: int) -> int:
        return x + 1

    with app.worker(concurrency=2):
        handle = app.submit(Chain(step.message(0), step.message(), step.message()))
        assert handle.result(timeout=30) == 3
    history = handle.history()
    submitted = history[0].event
    assert isinstance(submitted, WorkflowSubmitted)
    assert submitted.options["history"] == [10_000, 10 * 2**20, 50_000, 50 * 2**20]
    assert not any(isinstance(e.event, HistoryWarning) for e in history)


def test_the_byte_budget_counts_encoded_sizes() -> None:
    budget = HistoryBudget(warn_events=1000, warn_bytes=100, max_events=1000, max_bytes=250)
    submitted = WorkflowSubmitted(
        def_hash="ab" * 16, args={}, options={"history": budget.option()}, engine_version="t"
    )
    work = Actor(lambda x: x, name="work", options=ActorOptions())
    definition = compile_canvas(Chain(work.message(1))).definition
    entries = [Entry(seq=1, stream_id="1-0", event=submitted, size=120)]
    state = fold_all(entries)
    (warning, enqueued) = decide(definition, state, entries[0])
    assert warning == HistoryWarning(events=1, bytes=120, cause=1)
    assert isinstance(enqueued, TaskEnqueued)
    done = Entry(seq=2, stream_id="2-0", event=TaskSucceeded(node=0, attempt=1, result=1), size=200)
    state = fold_all([done], state)
    (failed,) = decide(definition, state, done)
    assert isinstance(failed, WorkflowFailed)
    assert "320 bytes" in failed.error["message"]


@pytest.mark.parametrize(
    "kwargs",
    [{"warn_events": 0}, {"max_bytes": -1}, {"warn_events": 10, "max_events": 5}],
)
def test_a_bad_budget_is_refused_naming_it(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="HistoryBudget"):
        HistoryBudget(**kwargs)
