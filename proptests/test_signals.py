"""Signals, property-based, on the simulated shell: random canvases with ``Signal``
nodes, their signals sent at random moments (before their nodes are reached, while
they wait, after they took them: duplicates) among random deliveries, duplicated and
lost messages, crashes and stale projectors. Each signal is recorded once, each node
waiting for it takes it once, the result is the reference model's (a signal node's
value is its payload), and every log audits clean and replays."""

from __future__ import annotations

from typing import Any

import hypothesis
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from proptests.checker import Checker
from proptests.simulator import SIGNALS, Case, F, Simulator, evaluate, payload_of
from proptests.simulator import signal_cases as cases
from proptests.test_core import SerialisedMachine, WorkflowMachine, _decidable, check_finished
from streamflow.api.canvas import Chain, Group
from streamflow.api.compile import compile_canvas
from streamflow.api.signals import Signal
from streamflow.model.events import SignalReceived, TaskEnqueued, TaskSucceeded
from streamflow.model.schema import COMPLETED
from streamflow.testing import assert_audit_clean


class SignalMachine(SerialisedMachine):
    """``WorkflowMachine`` with signals sent at random moments."""

    @initialize(target=WorkflowMachine.causes, case=cases())
    def submit(self, case: Case) -> Any:
        self.sim = Simulator(case)
        self.expected = evaluate(case.canvas)
        self.checker = Checker(case, self.expected)
        self.sent: set[str] = set()
        return _decidable(self.sim.submit())

    @rule(target=WorkflowMachine.causes, name=st.sampled_from(SIGNALS))
    def send(self, name: str) -> Any:
        before = len(self.sim.log)
        recorded = self.sim.signal(name, payload_of(name))
        if name in self.sent or name not in self.sim.definition.signals:
            assert not recorded or name not in self.sent, "a duplicate recorded"
        if recorded:
            self.sent.add(name)
        return _decidable(self.sim.log[before:])

    def teardown(self) -> None:
        if not hasattr(self, "sim"):
            return
        self.sim.drain()
        for name in self.sim.definition.signals:
            self.sim.signal(name, payload_of(name))  # those never sent (else duplicates)
        self.sim.drain()
        self.checker.feed(self.sim.log)
        check_finished(self.sim, self.expected)
        signalled = [e.event for e in self.sim.log if isinstance(e.event, SignalReceived)]
        assert sorted(s.name for s in signalled) == sorted({s.name for s in signalled}), (
            "a signal recorded twice"
        )
        for name, nodes in self.sim.definition.signals.items():
            for node in nodes:
                taken = [
                    e.event
                    for e in self.sim.log
                    if isinstance(e.event, TaskSucceeded) and e.event.node == node
                ]
                if self.sim.idx.status == COMPLETED:
                    assert [t.result for t in taken] == [payload_of(name)], (node, taken)
                else:
                    assert len(taken) <= 1, (node, taken)
        hypothesis.event(f"signals sent early: {len(self.sent)}")
        hypothesis.event(f"status: {self.sim.idx.status}")


TestSignalMachine = SignalMachine.TestCase
TestSignalMachine.settings = settings(
    stateful_step_count=60, phases=[p for p in Phase if p is not Phase.explain]
)


@given(timeout_first=st.booleans(), retries=st.integers(0, 2), data=st.data())
def test_a_signal_and_its_timeout_race_to_one_outcome(
    timeout_first: bool, retries: int, data: st.DataObject
) -> None:
    """A waiting node with a timeout: its message (the timeout) and its signal in
    either order, at any moment; one outcome per attempt, never a timeout after the
    signal, and the signal taken as soon as an attempt waits."""
    canvas = Chain(F.message(1), Signal("s0", timeout=1, max_retries=retries), F.message(2))
    compiled = compile_canvas(canvas)
    sim = Simulator(Case(canvas=canvas, compiled=compiled, fail_until={}))
    sim.submit()
    sent = False
    for _ in range(200):
        moves = [m for m in ("deliver", "finish", "signal") if _can(sim, m, sent)]
        if not moves:
            break
        move = data.draw(st.sampled_from(moves))
        if move == "deliver":
            sim.deliver(data.draw(st.integers(0, 255)))
        elif move == "finish":
            sim.finish(sim.jobs[data.draw(st.integers(0, len(sim.jobs) - 1))])
        else:
            sent = True
            sim.signal("s0", payload_of("s0"))
    sim.drain()
    assert_audit_clean(sim.log, sim.definition)
    (node,) = sim.definition.signals["s0"]
    attempts = [
        e.event.attempt
        for e in sim.log
        if isinstance(e.event, TaskEnqueued) and e.event.node == node
    ]
    hypothesis.event(f"attempts: {max(attempts, default=0)}; status: {sim.idx.status}")
    if sent and sim.idx.status == COMPLETED:
        assert sim.value(node) == payload_of("s0")


def _can(sim: Simulator, move: str, sent: bool) -> bool:
    if move == "deliver":
        return bool(sim.queue)
    if move == "finish":
        return bool(sim.jobs)
    return not sent


def test_a_group_of_signals_examples() -> None:
    canvas = Group(Signal("s0"), Chain(F.message(3), Signal("s1")), Signal("s0"))
    sim = Simulator(Case(canvas=canvas, compiled=compile_canvas(canvas), fail_until={}))
    sim.submit()
    assert sim.signal("s0", 1) and not sim.signal("s0", 2)
    sim.drain()
    assert sim.idx.status == "running"  # s1 not sent yet
    assert sim.signal("s1", 5)
    sim.drain()
    assert sim.result().result == [1, 5, 1]
    assert_audit_clean(sim.log, sim.definition)
