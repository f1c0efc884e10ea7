"""``streamflow.testing`` used the way a user would: their own actors, no Redis."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamflow import Chain, Failure, Group, WithDelay, current_task
from streamflow.api.actors import Actor
from streamflow.api.compile import compile_canvas
from streamflow.model.events import BarrierReleased, TaskEnqueued, TaskStarted
from streamflow.model.options import ActorOptions
from streamflow.testing import (
    Faults,
    SimulatedFailure,
    Simulator,
    actor,
    assert_audit_clean,
    assert_released_once,
    canvases,
    evaluate,
    messages,
    run,
    task_ids,
)

# -- a user's actors (no App, no Redis) --------------------------------------------------


def _total(value: Any) -> int:
    if isinstance(value, list):
        return sum(_total(v) for v in value)
    return value if isinstance(value, int) else 0


@actor
def add(x: int, *piped: Any) -> int:
    return x + _total(list(piped))


@actor(max_retries=2, min_backoff=0.01)
def double(*piped: Any) -> int:
    return 2 * _total(list(piped))


@actor(actor_name="label")
async def label(name: str, *piped: Any) -> list[Any]:
    return [name, *piped]


class NotRetryableError(Exception):
    pass


@actor(max_retries=5, throws=(NotRetryableError,))
def picky(*piped: Any) -> None:
    raise NotRetryableError("never")


ACTORS = [add, double, label]
ARGS = {add: st.tuples(st.integers(0, 9)), "label": st.tuples(st.sampled_from("ab"))}

# -- strategies --------------------------------------------------------------------------


@given(canvases(ACTORS, args=ARGS, max_depth=3, max_width=6, max_tasks=15), st.data())
def test_any_canvas_of_my_actors_gives_the_direct_result_under_faults(
    canvas: Any, data: st.DataObject
) -> None:
    result = run(canvas, actors=ACTORS, data=data)
    assert result.status == "completed", result.error
    assert result.result == evaluate(canvas, actors=ACTORS).value
    assert_audit_clean(result.history)
    assert_released_once(result.history)


@given(messages([add], args=st.tuples(st.integers(0, 3)), pipe_ignore=st.just(True)))
def test_messages_strategy_uses_the_arguments_given(message: Any) -> None:
    assert message.actor_name == "add"
    assert len(message.args) == 1 and 0 <= message.args[0] <= 3
    assert message.pipe_ignore


def test_canvases_need_actors() -> None:
    with pytest.raises(ValueError, match="actors or a messages strategy"):
        canvases()


# -- the simulator -----------------------------------------------------------------------

CANVAS = Chain(add.message(1), Group(add.message(2), double.message()), add.message(0))


def test_run_without_faults_and_with_seeds() -> None:
    plain = run(CANVAS)  # in canvas order, no faults; actors made with @actor are found
    assert plain.status == "completed"
    assert plain.result == evaluate(CANVAS).value == 0 + (2 + 1) + 2 * 1
    for seed in range(50):
        result = run(CANVAS, seed=seed, faults=Faults(duplicate=0.5, drop=0.3, crash=0.5))
        assert result.result == 5
        assert_audit_clean(result.history)
    again = run(CANVAS, seed=7)
    assert again.history == run(CANVAS, seed=7).history  # deterministic


def test_the_caller_drives_every_fault() -> None:
    sim = Simulator(CANVAS, actors=ACTORS)
    sim.submit()
    sim.duplicate(0)  # the root's message twice in the queue
    job = sim.deliver(0)
    assert job is not None
    assert sim.deliver(1) is None  # the duplicate: dropped when it tries to start
    sim.drop(job)  # the worker dies mid-task
    job = sim.deliver(0)  # redelivered after its lease: runs again
    assert job is not None
    sim.crash(job)  # outcome recorded, projection lost
    assert sim.wakeups == 1 and [m.node for m in sim.queue] == [0]  # never acknowledged
    sim.recover()  # a recovery projector takes over
    assert [m.node for m in sim.queue] == [0, 2, 3]  # and the group's two tasks
    assert sim.deliver(0) is None  # the outcome exists: projected again, acknowledged
    sim.drain()
    result = sim.result()
    assert result.status == "completed" and result.result == 5
    assert result.stats["dup"] == 1 and result.stats["drops"] == 1
    assert result.stats["already_done"] == 1
    assert result.stats["crashes"] == 1 and result.stats["recoveries"] == 1
    starts = [e for e in result.history if isinstance(e.event, TaskStarted)]
    assert [e.event.node for e in starts][:2] == [0, 0]  # two deliveries of one attempt
    assert_audit_clean(result.history)


def test_failures_retries_and_allow_failure() -> None:
    d = compile_canvas(CANVAS).definition
    double_node = task_ids(d)[2]
    retried = run(CANVAS, seed=1, fail_until={double_node: 2})
    assert retried.result == 5
    enqueues = [e.event for e in retried.history if isinstance(e.event, TaskEnqueued)]
    assert [e.attempt for e in enqueues if e.node == double_node] == [1, 2, 3]
    failed = run(CANVAS, fail_until={double_node: 3})  # retries exhausted
    assert failed.status == "failed"
    assert failed.error is not None and failed.error["type"] == SimulatedFailure.__name__
    assert (failed.error["node"], failed.error["attempt"]) == (double_node, 3)
    assert_audit_clean(failed.history)
    # throws: no retry, whatever max_retries says; allow_failure: a Failure value.
    tolerant = Group(add.message(1), picky.message_with_options(allow_failure=True))
    result = run(tolerant, actors=[picky], seed=3)
    assert result.status == "completed"
    first, second = result.result
    assert first == 1 and isinstance(second, Failure) and second.attempt == 1
    assert second.type == "NotRetryableError"
    assert_audit_clean(result.history)


def test_async_actors_delays_context_and_the_codec() -> None:
    seen: list[Any] = []

    @actor
    def who(*piped: Any) -> tuple[int, int]:
        task = current_task()
        seen.append(task and (task.workflow_id, task.actor, task.attempt))
        return (1, 2)  # a tuple comes back from the log as a list

    canvas = Chain(WithDelay(who.message(), 2), label.message("a"))
    result = run(canvas, actors=[who, label])
    assert result.result == ["a", [1, 2]]
    assert result.result == evaluate(canvas, actors=[who, label]).value
    assert seen == [("sim", "who", 1), None]  # run sets current_task(); evaluate does not


def test_missing_actor_functions_are_named() -> None:
    # An actor of no App and not made with streamflow.testing.actor.
    elsewhere = Actor(lambda: None, name="elsewhere", options=ActorOptions())
    with pytest.raises(ValueError, match=r"no actor function for \['elsewhere'\]"):
        Simulator(elsewhere.message())


# -- assertions --------------------------------------------------------------------------


def test_assert_audit_clean_catches_a_broken_history() -> None:
    result = run(CANVAS, seed=2)
    history = result.history
    release = next(e for e in history if isinstance(e.event, BarrierReleased))
    broken = [*history, dataclasses.replace(release, seq=len(history) + 1)]
    with pytest.raises(AssertionError) as caught:
        assert_audit_clean(broken)
    message = str(caught.value)
    assert f"violation release_once_when_covered at seq {len(broken)}" in message
    assert "BarrierReleased(" in message
    with pytest.raises(AssertionError, match="released 2 times"):
        assert_released_once(broken, result.definition)
    # A decision today's code would not make: a replay divergence.
    bogus = dataclasses.replace(
        release, seq=len(history) + 1, event=TaskEnqueued(node=0, attempt=9, cause=1)
    )
    with pytest.raises(AssertionError, match="divergence at seq"):
        assert_audit_clean([*history, bogus], result.definition)


def test_assert_audit_clean_needs_a_definition_it_can_find() -> None:
    other = compile_canvas(Group(add.message(42), add.message(43)))
    sim = Simulator(other, actors=[add])
    sim.submit()
    sim.drain()
    assert_audit_clean(sim.log)  # the simulator registered its definition
    history = [
        dataclasses.replace(
            sim.log[0], event=dataclasses.replace(sim.log[0].event, def_hash="0" * 32)
        ),
        *sim.log[1:],
    ]
    with pytest.raises(ValueError, match="pass definition="):
        assert_audit_clean(history)
    assert_audit_clean(history, other.definition)


def test_import_streamflow_does_not_import_testing_or_hypothesis() -> None:
    code = (
        "import sys, streamflow, streamflow.testing as t; "
        "assert 'hypothesis' not in sys.modules, 'hypothesis'; "
        "t.canvases; assert 'hypothesis' in sys.modules"
    )
    check = "import sys, streamflow; assert 'streamflow.testing' not in sys.modules"
    for source in (check, code):
        subprocess.run([sys.executable, "-c", source], check=True)


def test_callbacks_run_in_the_simulator_too() -> None:
    reports: list[Any] = []

    @actor
    def boom(*piped: Any) -> None:
        raise ValueError("no")

    @actor
    def report(*received: Any) -> str:
        reports.append(received)
        return "ok"

    canvas = Chain(
        add.message_with_options(args=(1,), on_success=report),
        boom.message_with_options(allow_failure=True, on_failure=report),
    )
    result = run(canvas)
    assert result.status == "completed"
    assert [r[0]["actor_name"] for r in reports] == ["add", "boom"]
    assert reports[0][1] == 1 and reports[1][1]["type"] == "ValueError"
    assert_audit_clean(result.history)
    reports.clear()
    failed = run(Chain(add.message(1), boom.message()), on_failure=report, seed=4)
    assert failed.status == "failed"
    assert reports and reports[-1][0]["type"] == "ValueError"  # (error, partial results)
    assert_audit_clean(failed.history)
