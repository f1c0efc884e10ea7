"""Child workflows against a real Redis and worker: a ``Child(canvas)`` node runs its
canvas as a workflow of its own, linked to it, and takes its outcome; one worker thread
is enough (a waiting node holds none); cancelling the parent cancels the child."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis

from streamflow import App, Chain, Child, Failure, Group, ResultFailure, TaskContext, current_task
from streamflow.api.children import ChildError
from streamflow.history.audit import audit, audit_child
from streamflow.model.children import child_workflow_id
from streamflow.model.events import ChildStarted, TaskStarted, WorkflowCompleted, WorkflowSubmitted
from tests.helpers import audited, cli, definition_of, hold, runs, stop, worker_process
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def actors(app: App, r: redis.Redis) -> Any:
    @app.actor
    def add(a: int, b: int) -> int:
        return a + b

    @app.actor
    def total(values: list[int]) -> int:
        return sum(values)

    @app.actor
    def boom() -> None:
        raise ValueError("boom in the child")

    @app.actor
    def wait() -> str:
        hold(r, "go", 20)
        return "waited"

    return add, total, boom, wait


def test_a_child_workflow_runs_and_its_result_is_piped_on(app: App, r: redis.Redis) -> None:
    add, total, _, _ = actors(app, r)
    inner = Chain(Group(add.message(1, 1), add.message(2, 2)), total.message())
    canvas = Chain(add.message(1, 2), Child(inner), add.message_with_options(args=(100,)))
    with app.worker(concurrency=1):  # the waiting node holds no thread
        handle = app.submit(canvas)
        assert handle.result(timeout=15) == 106
    history = audited(app, handle.id)
    child_id = child_workflow_id(handle.id, 2, 1)
    child = audited(app, child_id)
    submitted = child[0].event
    assert isinstance(submitted, WorkflowSubmitted)
    assert submitted.options["parent"] == {"workflow_id": handle.id, "node": 2, "attempt": 1}
    assert app.handle(child_id).result() == 6
    starts = [e for e in history if isinstance(e.event, TaskStarted) and e.event.node == 2]
    assert len(starts) == 2 and starts[1].event.takeover  # parked, then its outcome


def test_a_failed_child_fails_its_node(app: App, r: redis.Redis) -> None:
    add, _, boom, _ = actors(app, r)
    with app.worker(concurrency=2):
        failing = app.submit(
            Chain(Child(Chain(add.message(1, 1), boom.message())), add.message(0, 0))
        )
        with pytest.raises(ResultFailure) as raised:
            failing.result(timeout=15)
        assert raised.value.error["type"] == "ChildFailed"
        assert "failed" in raised.value.error["message"]
        tolerated = app.submit(Group(Child(boom.message(), allow_failure=True), add.message(2, 3)))
        failure, five = tolerated.result(timeout=15)
        assert isinstance(failure, Failure) and failure.type == "ChildFailed" and five == 5
    audited(app, failing.id)


def test_cancelling_the_parent_cancels_the_child(app: App, r: redis.Redis) -> None:
    _, _, _, wait = actors(app, r)
    with app.worker(concurrency=2):
        handle = app.submit(Child(Chain(wait.message(), wait.message())))
        child = app.handle(child_workflow_id(handle.id, 0, 1))
        wait_until(lambda: _running(child), 10, message="the child running")
        assert handle.cancel("no longer needed")
        assert child.status().status == "cancelled"
        r.lpush("go", 1)
    assert handle.status().status == "cancelled"


def _running(handle: Any) -> bool:
    try:
        return handle.status().status == "running"
    except LookupError:
        return False


def test_the_simulator_runs_children_as_a_worker_does(app: App, r: redis.Redis) -> None:
    from streamflow.testing import Simulator, assert_audit_clean

    add, total, _, _ = actors(app, r)
    inner = Chain(Group(add.message(1, 1), Child(add.message(2, 2))), total.message())
    canvas = Chain(add.message(1, 2), Child(inner), add.message_with_options(args=(100,)))
    sim = Simulator(canvas)
    sim.submit()
    sim.drain()
    with app.worker(concurrency=1):
        assert app.submit(canvas).result(timeout=15) == sim.result().result == 106
    family = list(sim.family())
    assert [m.idx.status for m in family] == ["completed"] * 3  # parent, child, grandchild
    for member in family:
        assert_audit_clean(member.log, member.definition)


def test_the_sweep_finishes_a_parent_its_child_could_not_tell(
    app: App, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the process that ended the child died before telling the parent.
    monkeypatch.setattr("streamflow.api.app.tell_parent", lambda app, workflow_id: None)
    add, _, _, _ = actors(app, r)
    with app.worker(concurrency=2, stuck_after_s=0.5, sweep_interval_s=0.1):
        handle = app.submit(Chain(Child(add.message(2, 3)), add.message_with_options(args=(1,))))
        assert handle.result(timeout=15) == 6
    audited(app, handle.id)


def test_children_that_end_before_their_node_parks_are_taken_at_once(
    app: App, r: redis.Redis
) -> None:
    # A quick child can end (and tell its parent) while its node's message is still
    # pending: that new message is dropped as a duplicate, so the node's run looks again
    # once its own message is acknowledged (else only the sweep, a minute later, would).
    add, _, _, _ = actors(app, r)
    with app.worker(concurrency=4):
        handles = [
            app.submit(Group(*(Child(add.message(i, n)) for i in range(4)))) for n in range(5)
        ]
        for n, handle in enumerate(handles):
            assert handle.result(timeout=20) == [i + n for i in range(4)]


# -- children a task starts: current_task().submit(canvas) --------------------------


def starters(app: App, r: redis.Redis) -> Any:
    add, _, _, wait = actors(app, r)

    @app.actor
    def fan(n: int, *piped: object) -> int:
        task = current_task()
        assert task is not None
        children = [task.submit(add.message(i, i)) for i in range(n)]
        return sum(child.result(timeout=15) for child in children)

    @app.actor
    def two() -> None:
        task = current_task()
        assert task is not None
        task.submit(wait.message())
        task.submit(wait.message(), detached=True)
        hold(r, "parent-go", 20)

    @app.actor
    def late() -> None:
        hold(r, "parent-go", 20)
        task = current_task()
        assert task is not None
        try:
            task.submit(add.message(1, 1))
        except ChildError as refused:
            r.set("refused", str(refused))

    return add, fan, two, late


def test_a_task_starts_children_linked_both_ways(app: App, r: redis.Redis) -> None:
    _, fan, _, _ = starters(app, r)
    with app.worker(concurrency=4):
        handle = app.submit(Chain(fan.message(3), fan.message_with_options(args=(2,))))
        assert handle.result(timeout=20) == 2  # 0 + 2 + 4, then 0 + 2 piped past
    history = audited(app, handle.id)
    started = [e.event for e in history if isinstance(e.event, ChildStarted)]
    assert [(s.node, s.attempt, s.detached) for s in started] == [(0, 1, False)] * 3 + [
        (2, 1, False)  # node 1 is the barrier between the steps
    ] * 2
    # The k-th child of an attempt has an id derived from it: a redelivery finds it.
    assert [s.child for s in started] == [
        child_workflow_id(handle.id, node, 1, k)
        for node, k in ((0, 0), (0, 1), (0, 2), (2, 0), (2, 1))
    ]
    for s in started:
        child = audited(app, s.child)
        link = child[0].event.options["parent"]  # type: ignore[attr-defined]
        assert link == {"workflow_id": handle.id, "node": s.node, "attempt": s.attempt}
        assert app.handle(s.child).status().status == "completed"


def test_cancelling_the_parent_leaves_detached_children_running(app: App, r: redis.Redis) -> None:
    _, _, two, _ = starters(app, r)
    with app.worker(concurrency=6):
        sync_parent, async_parent = app.submit(two.message()), app.submit(two.message())
        kids = {
            parent.id: [app.handle(child_workflow_id(parent.id, 0, 1, k)) for k in (0, 1)]
            for parent in (sync_parent, async_parent)
        }
        everyone = [child for pair in kids.values() for child in pair]
        wait_until(lambda: all(_running(c) for c in everyone), 10, message="the children")
        assert sync_parent.cancel("sync")
        assert anyio.run(app.handle_async(async_parent.id).cancel, "async")
        for attached, detached in kids.values():
            assert attached.status().status == "cancelled"
            assert detached.status().status == "running"
        r.lpush("go", *range(4))  # the children's waits
        r.lpush("parent-go", 1, 1)
        for _, detached in kids.values():
            assert detached.result(timeout=15) == "waited"


def test_a_task_of_an_ended_workflow_starts_no_child(app: App, r: redis.Redis) -> None:
    _, _, _, late = starters(app, r)
    with app.worker(concurrency=2):
        handle = app.submit(late.message())
        wait_until(lambda: handle.status().counts["running"] == 1, 10, message="the task")
        assert handle.cancel("stop")
        r.lpush("parent-go", 1)
        wait_until(lambda: r.get("refused") is not None, 10, message="the refusal")
    assert f"workflow {handle.id} has ended" in r.get("refused").decode()  # type: ignore[union-attr]
    assert not any(isinstance(e.event, ChildStarted) for e in handle.history())
    with pytest.raises(LookupError):
        app.handle(child_workflow_id(handle.id, 0, 1)).status()


def test_a_task_run_without_a_worker_cannot_start_children() -> None:
    task = TaskContext(workflow_id="0-x", node=0, attempt=1, actor="fan")
    with pytest.raises(RuntimeError, match="fan: only a task a worker runs can start a child"):
        task.submit(Chain())


def test_audit_follows_the_link(app: App, r: redis.Redis, redis_url: str) -> None:
    add, fan, _, _ = starters(app, r)
    with app.worker(concurrency=4):
        handle = app.submit(
            Chain(
                Child(Chain(add.message(1, 2), fan.message_with_options(args=(2,)))),
                add.message_with_options(args=(1,)),
            )
        )
        assert handle.result(timeout=20) == 3
    child_id = child_workflow_id(handle.id, 0, 1)
    grandchildren = [child_workflow_id(child_id, 2, 1, k) for k in (0, 1)]  # fan is node 2
    out = cli(redis_url, "audit", handle.id, "--children").stdout
    assert "in 4 workflows, nothing found" in out
    shown = cli(redis_url, "show", handle.id, "--children").stdout
    assert f"↳ child workflow {child_id}  completed" in shown
    assert all(f"child workflow {g}  completed" in shown for g in grandchildren)
    rows = [
        json.loads(line)
        for line in cli(redis_url, "history", handle.id, "--children", "--json").stdout.splitlines()
    ]
    assert {row["workflow_id"] for row in rows} == {handle.id, child_id, *grandchildren}
    assert [row["child"] for row in rows if row["type"] == "ChildStarted"] == [
        child_id,
        *grandchildren,
    ]
    # What the audit checks across the link: the child names the attempt that started it,
    # and the node's outcome is the child's.
    parent, child = app.history(handle.id), app.history(child_id)
    definition = definition_of(app, parent)
    assert audit_child(handle.id, parent, definition, child_id, child) == []
    assert [v.invariant for v in audit_child("0-other", parent, definition, child_id, child)] == [
        "child_linked_both_ways"
    ]
    failed_child = [e for e in child if not isinstance(e.event, WorkflowCompleted)]
    assert [
        v.invariant for v in audit_child(handle.id, parent, definition, child_id, failed_child)
    ] == ["child_outcome_is_childs"]
    # In the parent's own log: a Child node's success needs its ChildStarted first.
    without = [e for e in parent if not isinstance(e.event, ChildStarted)]
    renumbered = [dataclasses.replace(e, seq=i) for i, e in enumerate(without, 1)]
    assert "child_outcome_after_child" in {v.invariant for v in audit(renumbered, definition)}


def test_a_redelivered_run_finds_the_children_it_started(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    # The first run starts its children, then its worker process is SIGKILLed; the run
    # delivered again to another process starts the same two, and nothing more.
    starts = app.actor(lambda: None, actor_name="starts_children")
    handle = app.submit(starts.message())
    first = worker_process("tests.sample_app:app", redis_url, tmp_path / "first.log")
    try:
        wait_until(lambda: runs(r, "starts_children") == 1, 30, message="the first run")
        first.kill()
        first.wait()
        second = worker_process("tests.sample_app:app", redis_url, tmp_path / "second.log")
        try:
            wait_until(lambda: runs(r, "starts_children") == 2, 30, message="the run again")
            r.lpush("gate", 1)
            expected = [child_workflow_id(handle.id, 0, 1, k) for k in (0, 1)]
            assert handle.result(timeout=30) == expected
            for child in expected:
                assert app.handle(child).result(timeout=30) in ("first-child", "second-child")
        finally:
            stop(second, tmp_path / "second.log")
    finally:
        if first.poll() is None:
            first.kill()
    history = audited(app, handle.id)
    started = [e.event for e in history if isinstance(e.event, ChildStarted)]
    assert [(s.child, s.detached) for s in started] == [(expected[0], False), (expected[1], True)]
    # A lone task's start is recorded with its outcome: the run again's, after the
    # children the first run recorded.
    assert isinstance(history[-3].event, TaskStarted) and history[2].event == started[0]
    # The same two children, each submitted once (its task may have run twice: the
    # killed process may have been running it), and no third.
    for child in expected:
        assert [type(e.event) for e in audited(app, child)].count(WorkflowSubmitted) == 1
    with pytest.raises(LookupError):
        app.handle(child_workflow_id(handle.id, 0, 1, 2)).status()
