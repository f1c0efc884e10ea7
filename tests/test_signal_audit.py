"""``audit`` and ``replay`` on logs with signals (pure, on the simulator's logs): clean
ones pass, and each signal invariant catches its own mistake."""

from __future__ import annotations

import dataclasses

from streamflow import Chain, Signal, audit, replay
from streamflow.model.events import (
    Entry,
    SignalReceived,
    TaskEnqueued,
    TaskFailed,
    TaskSucceeded,
)
from streamflow.testing import Simulator, actor


@actor
def double(x: int) -> int:
    return 2 * x


def history(early: bool) -> tuple[list[Entry], Simulator]:
    """A clean log: the signal sent before its node is reached, or while it waits."""
    sim = Simulator(Chain(double.message(1), Signal("go"), double.piped()))
    sim.submit()
    if early:
        assert sim.signal("go", 4, sender="tests")
    sim.drain()
    if not early:
        assert sim.signal("go", 4, sender="tests")
        sim.drain()
    assert sim.result().result == 8
    return sim.log, sim


def renumber(entries: list[Entry]) -> list[Entry]:
    return [dataclasses.replace(e, seq=i) for i, e in enumerate(entries, 1)]


def invariants(log: list[Entry], sim: Simulator) -> set[str]:
    return {v.invariant for v in audit(log, sim.definition)}


def test_clean_logs_audit_and_replay_clean() -> None:
    for early in (True, False):
        log, sim = history(early)
        assert audit(log, sim.definition) == []
        assert replay(log, sim.definition) == []
        (node,) = sim.definition.signals["go"]
        (taken,) = [e for e in log if isinstance(e.event, TaskSucceeded) and e.event.node == node]
        received = next(e for e in log if isinstance(e.event, SignalReceived))
        enqueued = next(
            e for e in log if isinstance(e.event, TaskEnqueued) and e.event.node == node
        )
        # Decided with the signal, or in the closure that reached the node.
        assert received.seq < taken.seq
        assert taken.event.cause == (enqueued.event.cause if early else received.seq)


def test_each_signal_invariant_catches_its_mistake() -> None:
    log, sim = history(early=False)
    (node,) = sim.definition.signals["go"]
    received = next(e for e in log if isinstance(e.event, SignalReceived))
    taken = next(e for e in log if isinstance(e.event, TaskSucceeded) and e.event.node == node)
    at = log.index(taken)
    wrong_payload = dataclasses.replace(taken, event=dataclasses.replace(taken.event, result=5))
    timeout = TaskFailed(node=node, attempt=taken.event.attempt, error={"type": "SignalTimeout"})
    mistakes = {
        "signal_once": renumber([*log[:at], received, *log[at:]]),
        "signal_taken_as_sent": renumber([*log[:at], wrong_payload, *log[at + 1 :]]),
        "no_timeout_after_signal": renumber(
            [*log[:at], dataclasses.replace(taken, event=timeout), *log[at + 1 :]]
        ),
    }
    for invariant, broken in mistakes.items():
        assert invariant in invariants(broken, sim), invariant
    before_signal = renumber([e for e in log if e is not received])
    assert "signal_taken_as_sent" in invariants(before_signal, sim)
    # Without its signal, the node's success is a decision today's code does not make.
    assert replay(before_signal, sim.definition)
