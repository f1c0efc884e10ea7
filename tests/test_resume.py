"""Resuming failed workflows against a real Redis and worker: archived or live, the
failed nodes and those the failure cut short run again with their retries afresh, no
success runs twice, the log audits clean and replays, and refusals say why."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from streamflow import App, Chain, Group, ResultFailure, ResumeError
from streamflow.model.events import TaskStarted, WorkflowFailed, WorkflowResumed
from tests.helpers import audited, cli, events_of, hold, runs
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def actors(app: App, r: redis.Redis) -> Any:
    @app.actor
    def step(x: int, *piped: Any) -> int:
        r.incr(f"runs:step{x}")
        return x

    @app.actor(max_retries=1, min_backoff=0.01)
    def flaky(x: int, *piped: Any) -> int:
        r.incr("runs:flaky")
        if not r.exists("fixed"):
            raise ValueError("still broken")
        return 10 * x

    return step, flaky


def failed(app: App, handle: Any) -> None:
    with pytest.raises(ResultFailure):
        handle.result(timeout=10)
    wait_until(lambda: handle.status().archived, 10, message="the failed workflow archived")


def test_an_archived_failure_resumes_where_it_failed(app: App, r: redis.Redis) -> None:
    step, flaky = actors(app, r)
    canvas = Chain(step.message(1), Group(step.message(2), flaky.message(3)), step.message(4))
    with app.worker(concurrency=2):
        handle = app.submit(canvas)
        failed(app, handle)
        assert runs(r, "flaky") == 2  # its one retry used
        r.set("fixed", 1)
        nodes = app.resume_workflow(handle.id, reason="fixed the bug", by="tests")
        assert handle.result(timeout=10) == 4
    assert (runs(r, "step1"), runs(r, "step2"), runs(r, "flaky"), runs(r, "step4")) == (1, 1, 3, 1)
    history = audited(app, handle.id)
    (resumed,) = events_of(history, WorkflowResumed)
    assert (resumed.epoch, resumed.reason, resumed.by) == (1, "fixed the bug", "tests")
    assert sorted(resumed.nodes) == nodes and list(resumed.nodes.values()) == [3]
    assert handle.status().status == "completed"


def test_resumed_nodes_get_their_retries_afresh_and_can_be_resumed_again(
    app: App, r: redis.Redis
) -> None:
    @app.actor(max_retries=1, min_backoff=0.01)
    def until(n: int) -> int:
        done = r.incr("runs:until")
        if done < n:
            raise ValueError(f"run {done} of {n}")
        return done

    with app.worker(concurrency=1):
        handle = app.submit(until.message(5))
        failed(app, handle)  # runs 1, 2
        app.resume_workflow(handle.id)
        failed(app, handle)  # runs 3, 4: its one retry, counted afresh
        app.resume_workflow(handle.id)
        assert handle.result(timeout=10) == 5
    history = audited(app, handle.id)
    assert len(events_of(history, WorkflowFailed)) == 2
    assert [e.epoch for e in events_of(history, WorkflowResumed)] == [1, 2]
    assert [e.attempt for e in events_of(history, TaskStarted)] == [1, 2, 3, 4, 5]


def test_a_task_the_failure_cut_short_runs_again(app: App, r: redis.Redis) -> None:
    @app.actor
    def slow() -> str:
        r.incr("runs:slow")
        hold(r, "go", 10)
        return "slow"

    @app.actor
    def boom() -> None:
        r.incr("runs:boom")
        if not r.exists("fixed"):
            raise ValueError("boom")

    with app.worker(concurrency=2):
        handle = app.submit(Group(slow.message(), boom.message()))
        with pytest.raises(ResultFailure):
            handle.result(timeout=10)
        r.lpush("go", 1)  # slow ends after the failure: its outcome is refused
        wait_until(lambda: handle.status().archived, 10, message="archived")
        r.set("fixed", 1)
        r.lpush("go", 1)
        assert app.resume_workflow(handle.id) == [0, 1]
        assert handle.result(timeout=10) == ["slow", None]
    assert runs(r, "slow") == 2 and runs(r, "boom") == 2
    audited(app, handle.id)


def test_a_live_failed_workflow_resumes(app: App, r: redis.Redis) -> None:
    step, flaky = actors(app, r)

    @app.actor
    def report(*args: Any) -> None:
        hold(r, "reported", 10)  # keeps the failed workflow from being archived

    with app.worker(concurrency=2):
        handle = app.submit(Chain(flaky.message(1), step.message(2)), on_failure=report)
        with pytest.raises(ResultFailure):
            handle.result(timeout=10)
        assert not handle.status().archived
        r.set("fixed", 1)
        assert app.resume_workflow(handle.id) == [0]
        r.lpush("reported", 1)
        assert handle.result(timeout=10) == 2
    audited(app, handle.id)


def test_what_cannot_be_resumed_is_refused(app: App, r: redis.Redis) -> None:
    step, _ = actors(app, r)
    with pytest.raises(ResumeError, match="no workflow"):
        app.resume_workflow(app.new_workflow_id())
    handle = app.submit(step.message(1))
    with pytest.raises(
        ResumeError, match=r"only a failed workflow can be resumed \(this one is running\)"
    ):
        app.resume_workflow(handle.id)
    with app.worker(concurrency=1):
        handle.result(timeout=10)
    with pytest.raises(ResumeError, match="this one is completed"):
        app.resume_workflow(handle.id)


def test_resume_from_the_cli_and_asyncio(app: App, r: redis.Redis, redis_url: str) -> None:
    _, flaky = actors(app, r)
    with app.worker(concurrency=1):
        first, second = app.submit(flaky.message(1)), app.submit(flaky.message(2))
        failed(app, first)
        failed(app, second)
        r.set("fixed", 1)
        said = cli(redis_url, "resume", first.id, "--reason", "deploy 42")
        assert said.stdout == f"resumed {first.id}: node [0] run again\n"
        assert first.result(timeout=10) == 10
        refused = cli(redis_url, "resume", first.id, code=1)
        assert "ResumeError" in refused.stderr and "Traceback" not in refused.stderr

        async def main() -> Any:
            assert await app.resume_workflow_async(second.id, by="a coroutine") == [0]
            return await app.handle_async(second.id).result(timeout=10)

        assert asyncio.run(main()) == 20
    asyncio.run(app.aclose())  # after the worker: it flushes its counts as it stops
    (resumed,) = events_of(app.history(first.id), WorkflowResumed)
    assert (resumed.reason, resumed.by) == ("deploy 42", "streamflow resume")
