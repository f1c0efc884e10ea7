"""Child workflows against a real Redis and worker: a ``Child(canvas)`` node runs its
canvas as a workflow of its own, linked to it, and takes its outcome; one worker thread
is enough (a waiting node holds none); cancelling the parent cancels the child."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from streamflow import App, Chain, Child, Failure, Group, ResultFailure
from streamflow.model.children import child_workflow_id
from streamflow.model.events import TaskStarted, WorkflowSubmitted
from tests.helpers import audited, hold
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


def test_the_simulator_says_it_does_not_run_children(app: App, r: redis.Redis) -> None:
    from streamflow.testing import Simulator

    add, _, _, _ = actors(app, r)
    with pytest.raises(ValueError, match="does not run child workflows"):
        Simulator(Child(add.message(1, 2)))


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
