"""Forks against a real Redis and worker (``App.fork_workflow``, ``streamflow resume ID
--from NODE``): a new workflow runs the named node and what follows from it again, with
the same inputs; every other success is kept, and its task does not run; the original
is left as it was; the fork's log audits clean and replays."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from streamflow import App, Chain, Child, ForkError, Group, ResultFailure, Signal
from streamflow.model.events import TaskStarted, TaskSucceeded, WorkflowSubmitted
from streamflow.runtime.projector import APPLY_CHUNK
from tests.helpers import audited, cli, events_of, runs

pytestmark = pytest.mark.integration


def actors(app: App, r: redis.Redis) -> Any:
    @app.actor
    def step(x: int, *piped: Any) -> int:
        r.incr(f"runs:step{x}")
        return x + sum(p for p in piped if isinstance(p, int))

    @app.actor
    def gate(x: int, *piped: Any) -> int:
        r.incr("runs:gate")
        if not r.exists("fixed"):
            raise ValueError("not yet")
        return 100 * x

    @app.actor
    def big(n: int) -> str:
        r.incr("runs:big")
        return "x" * n

    @app.actor
    def size(value: str) -> int:
        return len(value)

    return step, gate, big, size


def started_nodes(history: list[Any]) -> set[int]:
    return {e.node for e in events_of(history, TaskStarted)}


def test_a_fork_runs_a_node_and_what_follows_it_again(app: App, r: redis.Redis) -> None:
    step, *_ = actors(app, r)
    # step1 -> (step2 | step3) -> step4: node ids 0, 2, 3, 5 (barriers between).
    canvas = Chain(step.message(1), Group(step.message(2), step.message(3)), step.message(4))
    with app.worker(concurrency=2):
        original = app.submit(canvas)
        assert original.result(timeout=10) == 4
        fork = app.fork_workflow(original.id, 3, reason="step3 changed", by="tests")
        assert fork.result(timeout=10) == 4
    assert [runs(r, f"step{i}") for i in (1, 2, 3, 4)] == [1, 1, 2, 2]
    history = audited(app, fork.id)
    assert started_nodes(history) == {3, 5}  # the others are kept: they never start
    kept = {e.node for e in events_of(history, TaskSucceeded)} - started_nodes(history)
    assert kept == {0, 2}
    submitted = history[0].event
    assert isinstance(submitted, WorkflowSubmitted)
    fork_option = submitted.options["fork"]
    assert (fork_option["workflow_id"], fork_option["node"]) == (original.id, 3)
    assert (fork_option["reason"], fork_option["by"]) == ("step3 changed", "tests")
    assert app.handle(original.id).status().status == "completed"  # left as it was
    assert len(audited(app, original.id)) == len(app.history(original.id))


def test_a_failed_workflow_forked_from_its_failed_node_completes(app: App, r: redis.Redis) -> None:
    step, gate, *_ = actors(app, r)
    canvas = Chain(step.message(1), gate.message(2), step.message(3))
    with app.worker(concurrency=2):
        original = app.submit(canvas)
        with pytest.raises(ResultFailure):
            original.result(timeout=10)
        r.set("fixed", 1)
        fork = app.fork_workflow(original.id, 2)
        assert fork.result(timeout=10) == 200 + 3
    assert (runs(r, "step1"), runs(r, "gate"), runs(r, "step3")) == (1, 2, 1)
    assert started_nodes(audited(app, fork.id)) == {2, 4}
    assert app.handle(original.id).status().status == "failed"


def test_a_result_stored_out_of_line_is_kept(redis_url: str, r: redis.Redis) -> None:
    app = App(redis_url, large_result_bytes=100)
    try:
        _, _, big, size = actors(app, r)
        with app.worker(concurrency=2):
            original = app.submit(Chain(big.message(5000), size.message()))
            assert original.result(timeout=10) == 5000
            fork = app.fork_workflow(original.id, 2)
            assert fork.result(timeout=10) == 5000
            assert fork.results_by_part(Chain(big.message(5000), size.message())) == [
                "x" * 5000,
                5000,
            ]
        assert runs(r, "big") == 1
        audited(app, fork.id)
    finally:
        app.close()


def test_a_wide_kept_group_goes_in_several_calls(app: App, r: redis.Redis) -> None:
    step, *_ = actors(app, r)
    width = APPLY_CHUNK + 200
    with app.worker(concurrency=8):
        original = app.submit(
            Chain(Group(*(step.message(0) for _ in range(width))), step.message(9))
        )
        assert original.result(timeout=60) == 9
        last = max(e.node for e in events_of(original.history(), TaskStarted))
        fork = app.fork_workflow(original.id, last)
        assert fork.result(timeout=30) == 9
    assert (runs(r, "step0"), runs(r, "step9")) == (width, 2)  # no member ran again
    assert started_nodes(audited(app, fork.id)) == {last}


def test_refusals_name_what_is_wrong(app: App, r: redis.Redis) -> None:
    step, *_ = actors(app, r)
    with pytest.raises(ForkError, match="no workflow '0-00ff' to fork"):
        app.fork_workflow("0-00ff", 0)
    with app.worker():
        handle = app.submit(Chain(step.message(1), step.message(2)))
        handle.result(timeout=10)
    with pytest.raises(ForkError, match=r"node 1 is not one of its tasks \(its tasks: \[0, 2\]\)"):
        app.fork_workflow(handle.id, 1)  # the barrier between the steps


def test_the_cli_and_asyncio_fork(app: App, r: redis.Redis, redis_url: str) -> None:
    step, *_ = actors(app, r)
    with app.worker(concurrency=2):
        original = app.submit(Chain(step.message(1), step.message(2)))
        assert original.result(timeout=10) == 3
        out = cli(redis_url, "resume", original.id, "--from", "2", "--reason", "again").stdout
        assert out.startswith(f"forked {original.id} as ")
        assert out.rstrip().endswith("node 2 and what follows from it run again, 1 result kept")
        fork_id = out.split(" as ")[1].split(":")[0]
        assert app.handle(fork_id).result(timeout=10) == 3
        shown = cli(redis_url, "show", fork_id).stdout
        assert f"forked from: {original.id} node 2 (again)" in shown

        async def fork_async() -> Any:
            handle = await app.fork_workflow_async(original.id, 0)
            return await handle.result(timeout=10)

        assert asyncio.run(fork_async()) == 3
    failed = cli(redis_url, "resume", "--from", "2", code=1)
    assert "--from NODE needs a workflow id" in failed.stderr


def test_a_signal_taken_and_a_child_run_are_kept(app: App, r: redis.Redis) -> None:
    step, *_ = actors(app, r)
    canvas = Chain(Signal("go"), Child(step.message(5)), step.message(6))
    with app.worker(concurrency=2):
        original = app.submit(canvas)
        assert app.signal(original.id, "go", 1)
        assert original.result(timeout=10) == 6 + 5
        fork = app.fork_workflow(original.id, 4)  # the last step only
        assert fork.result(timeout=10) == 6 + 5  # no signal sent to it, no child started
    history = audited(app, fork.id)
    assert started_nodes(history) == {4}
    assert not fork.snapshot().state.children
    assert (runs(r, "step5"), runs(r, "step6")) == (1, 2)
