"""``replay`` on each event type (pure, on the simulator's logs): a clean log replays
clean, and a log whose event was changed is caught, by ``replay`` where decisions
follow from that event (or the event is a decision), by ``audit`` where none do."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from streamflow import Chain, Child, Group, Signal, audit, replay
from streamflow.model.events import (
    BarrierDecremented,
    BarrierReleased,
    ChildStarted,
    Entry,
    Event,
    HistoryWarning,
    SignalReceived,
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowResumed,
    WorkflowSubmitted,
)
from streamflow.model.fork import FORK, kept_results
from streamflow.testing import Simulator, actor
from tests.test_events import EVENTS


@actor
def twice(x: int, *piped: object) -> int:
    return 2 * x


@actor(max_retries=1, min_backoff=0.01)
def shaky(x: int, *piped: object) -> int:
    return x


def _run(sim: Simulator) -> list[Entry]:
    sim.submit()
    sim.drain()
    return sim.log


def plain() -> Simulator:
    """Every plain event type: a group's barrier, a retried task, completion."""
    sim = Simulator(
        Chain(Group(twice.message(1), shaky.message(2)), twice.message(3)),
        fail_until={1: 1},  # shaky (node 1) fails once, then succeeds
    )
    _run(sim)
    return sim


def failing() -> Simulator:
    """A final failure, a resume, and a signal."""
    sim = Simulator(Chain(Signal("go"), shaky.message(1)), fail_until={2: 2})
    sim.submit()
    assert sim.signal("go", 7)
    sim.drain()
    assert sim.idx.status == "failed"
    sim.fail_until.clear()
    sim.bodies.fail_until = {}
    sim.resume(reason="fixed")
    sim.drain()
    return sim


def warned() -> Simulator:
    sim = Simulator(Chain(twice.message(1), twice.message(2)))
    sim.options = {"history": [3, 10**9, 10**6, 10**9]}  # warn past three events
    _run(sim)
    return sim


def with_child() -> Simulator:
    sim = Simulator(Chain(twice.message(1), Child(twice.message(2))))
    _run(sim)
    return sim


def forked() -> Simulator:
    source = plain()
    sim = Simulator(source.compiled)
    sim.actors, sim.bodies.actors = source.actors, source.actors
    results = kept_results(source.definition, source.idx, 3)  # re-run the last step
    sim.options = {FORK: {"workflow_id": "0-51", "node": 3, "results": results}}
    _run(sim)
    return sim


def cancelled() -> tuple[list[Entry], Simulator]:
    sim = Simulator(Chain(twice.message(1), twice.message(2)))
    sim.submit()
    sim.deliver(0)
    last = sim.log[-1]
    stream_id = f"{int(last.stream_id.split('-')[0]) + 1}-0"
    end = Entry(seq=len(sim.log) + 1, stream_id=stream_id, event=WorkflowCancelled(reason="x"))
    return [*sim.log, end], sim


def renumbered(entries: list[Entry]) -> list[Entry]:
    return [dataclasses.replace(e, seq=i) for i, e in enumerate(entries, 1)]


def changed(log: list[Entry], kind: type[Event], change: Callable[[Event], Event]) -> list[Entry]:
    """``log`` with its first event of ``kind`` changed (sequence numbers kept)."""
    at = next(i for i, e in enumerate(log) if type(e.event) is kind)
    return [*log[:at], dataclasses.replace(log[at], event=change(log[at].event)), *log[at + 1 :]]


def caught(log: list[Entry], sim: Simulator) -> tuple[bool, bool]:
    """(replay finds a divergence, audit a violation)."""
    return bool(replay(log, sim.definition)), bool(audit(log, sim.definition))


CASES: dict[str, Callable[[], tuple[list[Entry], Simulator, list[Entry], str]]] = {}


def case(
    kind: type[Event],
) -> Callable[[Callable[[], tuple[list[Entry], Simulator, list[Entry], str]]], None]:
    def register(make: Callable[[], tuple[list[Entry], Simulator, list[Entry], str]]) -> None:
        CASES[kind.__name__] = make

    return register


@case(WorkflowSubmitted)
def _submitted() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = forked()  # the kept results it carries are what decide takes
    no_fork = changed(sim.log, WorkflowSubmitted, lambda e: dataclasses.replace(e, options={}))
    return sim.log, sim, no_fork, "replay"


@case(TaskEnqueued)
def _enqueued() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = plain()
    wrong = changed(sim.log, TaskEnqueued, lambda e: dataclasses.replace(e, attempt=3))
    return sim.log, sim, wrong, "replay"


@case(TaskStarted)
def _started() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = plain()  # nothing is decided from a start: a start too early is audit's
    last = max(e.event.node for e in sim.log if isinstance(e.event, TaskStarted))
    early = TaskStarted(node=last, attempt=1, worker="w", msg_id="1-0")
    at = next(i for i, e in enumerate(sim.log) if isinstance(e.event, TaskStarted))
    wrong = renumbered(
        [*sim.log[:at], dataclasses.replace(sim.log[at], event=early), *sim.log[at:]]
    )
    return sim.log, sim, wrong, "audit"


@case(TaskSucceeded)
def _succeeded() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = plain()  # its decrement follows from it: as a failure, nothing would
    wrong = changed(
        sim.log,
        TaskSucceeded,
        lambda e: TaskFailed(node=e.node, attempt=e.attempt, error={}, cause=e.cause),  # type: ignore[attr-defined]
    )
    return sim.log, sim, wrong, "replay"


@case(TaskFailed)
def _failed() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = plain()  # its retry follows from it: as a final failure, the retry would not
    wrong = changed(sim.log, TaskFailed, lambda e: dataclasses.replace(e, retry_delay_ms=None))
    return sim.log, sim, wrong, "replay"


@case(BarrierDecremented)
def _decremented() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = plain()
    wrong = changed(sim.log, BarrierDecremented, lambda e: dataclasses.replace(e, cause=1))
    return sim.log, sim, wrong, "replay"


@case(BarrierReleased)
def _released() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = plain()
    # Decided from the submission instead: nothing there releases it.
    wrong = changed(sim.log, BarrierReleased, lambda e: dataclasses.replace(e, cause=1))
    return sim.log, sim, wrong, "replay"


@case(WorkflowCompleted)
def _completed() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = plain()
    # Completed before the last task succeeded: its success left out of the log.
    *before, last_success, end = sim.log
    assert isinstance(last_success.event, TaskSucceeded)
    early = dataclasses.replace(end.event, cause=before[-1].seq)
    wrong = [*before, dataclasses.replace(end, seq=end.seq - 1, event=early)]
    return sim.log, sim, wrong, "replay"


@case(WorkflowFailed)
def _failed_end() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = failing()
    wrong = changed(sim.log, WorkflowFailed, lambda e: dataclasses.replace(e, cause=1))
    return sim.log, sim, wrong, "replay"


@case(WorkflowCancelled)
def _cancelled() -> tuple[list[Entry], Simulator, list[Entry], str]:
    log, sim = cancelled()  # an outside input, like a resume: a second end is audit's
    again = dataclasses.replace(log[-1], seq=len(log) + 1)
    return log, sim, [*log, again], "audit"


@case(HistoryWarning)
def _warning() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = warned()  # decided from the budget: with a larger one, no warning follows
    wrong = changed(sim.log, WorkflowSubmitted, lambda e: dataclasses.replace(e, options={}))
    return sim.log, sim, wrong, "replay"


@case(SignalReceived)
def _signal() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = failing()  # its node's success is decided from it: under another name, not
    wrong = changed(sim.log, SignalReceived, lambda e: dataclasses.replace(e, name="other"))
    return sim.log, sim, wrong, "replay"


@case(WorkflowResumed)
def _resumed() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = failing()  # the re-run's enqueue follows from it: naming no node, none would
    wrong = changed(sim.log, WorkflowResumed, lambda e: dataclasses.replace(e, nodes={}))
    return sim.log, sim, wrong, "replay"


@case(ChildStarted)
def _child() -> tuple[list[Entry], Simulator, list[Entry], str]:
    sim = with_child()  # nothing is decided from it: a Child node's success without it
    at = next(i for i, e in enumerate(sim.log) if isinstance(e.event, ChildStarted))
    wrong = renumbered([*sim.log[:at], *sim.log[at + 1 :]])  # is audit's
    return sim.log, sim, wrong, "audit"


def test_every_event_type_has_a_replay_case() -> None:
    assert set(CASES) == {type(e).__name__ for e in EVENTS}


@pytest.mark.parametrize("name", sorted(CASES))
def test_replay_of_each_event_type(name: str) -> None:
    log, sim, wrong, finder = CASES[name]()
    assert any(type(e.event).__name__ == name for e in log), f"no {name} in the clean log"
    assert replay(log, sim.definition) == []
    assert audit(log, sim.definition) == []
    by_replay, by_audit = caught(wrong, sim)
    assert by_replay if finder == "replay" else by_audit, (name, finder)
