"""Property-based tests of the pure core (definition, fold, decide) under random
interleavings, no Redis: ``WorkflowMachine``.

Random canvases run through ``proptests.simulator``, a model of the shell (scripts,
workers, projectors) with duplicated, redelivered and lost messages, crashes between
outcome and projection, recovery projections and stale projectors. Every entry of the
log is checked against contract items 1 and 2 (DESIGN §1) as it is appended, and the
final result against a direct recursive evaluation of the canvas; every finished log
must also pass ``streamflow.audit.audit`` and ``replay``. The machines and these checks
(``check_finished``, ``simulate``) serve the other modules on the simulated shell too;
the compiler and the fold alone are tested in ``proptests.test_compile_fold``, examples
and the machine's regressions in ``proptests.test_core_examples``.
"""

from __future__ import annotations

from typing import Any

import hypothesis
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, rule

from proptests.checker import Checker
from proptests.simulator import DECIDABLE, Case, Expected, Simulator, cases, evaluate, task_ids
from streamflow.api.canvas import Canvas
from streamflow.api.compile import compile_canvas
from streamflow.model.decide import decide, decide_all
from streamflow.model.definition import Definition, assemble
from streamflow.model.events import DECISIONS, TERMINAL, Entry, WorkflowFailed, WorkflowResumed
from streamflow.model.index import index_fields
from streamflow.model.schema import COMPLETED, FAILED
from streamflow.model.state import State, fold, fold_all
from streamflow.testing import assert_audit_clean, assert_released_once

# -- checks on a finished simulation ---------------------------------------------------


def check_finished(sim: Simulator, expected: Expected) -> None:
    """Everything delivered: one terminal event (one per epoch of a resumed workflow,
    each right after a resume), the right one, the right result."""
    definition, log = sim.definition, sim.log
    assert not sim.queue and not sim.jobs
    terminals = [e for e in log if isinstance(e.event, TERMINAL)]
    resumes = [e for e in log if isinstance(e.event, WorkflowResumed)]
    assert len(terminals) == 1 + len(resumes), f"terminal events: {terminals}"
    assert log[-1] is terminals[-1]
    for end, resume in zip(terminals, resumes, strict=False):
        assert end.seq < resume.seq and isinstance(end.event, WorkflowFailed)
    state = fold_all(log)
    # The index the scripts kept incrementally is the fold of the log (DESIGN §1.5).
    assert state == sim.idx
    assert index_fields(state, definition) == index_fields(sim.idx, definition)
    if sim.case.fails_for_good and not resumes:
        assert state.status == FAILED
        failed = log[-1].event
        assert isinstance(failed, WorkflowFailed)
        assert sim.case.fail_until[failed.error["node"]] == failed.error["attempt"]
    else:
        assert state.status == COMPLETED
        assert assemble(definition.root_spec, state.results) == expected.value
        assert state.results == dict(zip(task_ids(definition), expected.values, strict=True))
    # Nothing is left to decide for a finished workflow ...
    assert decide_all(definition, state, log) == []
    # ... and just before its end, everything but the end was decided already.
    before = fold_all(log[:-1])
    pending = [e.idempotency_key() for e in decide_all(definition, before, log[:-1])]
    if state.status == COMPLETED:
        assert pending == ["end"]
    else:
        assert "end" in pending
    check_replay(definition, log)
    # The shipped checks find nothing either: ``audit`` (the contract's invariants) and
    # ``replay`` (contract 6), as users run them.
    assert_audit_clean(log, definition)
    assert_released_once(log, definition)


def check_replay(definition: Definition, log: list[Entry]) -> None:
    """Contract 6: refolding the log re-derives every decision recorded in it.

    Each decision is among what ``decide`` says about its cause, given the fold of
    everything before it (decisions are monotone, so a later fold than the deciding
    projector's still yields it).
    """
    state = State()
    for entry in log:
        event = entry.event
        if isinstance(event, DECISIONS):
            cause = log[event.cause - 1]
            assert event in decide(definition, state, cause), (
                f"seq {entry.seq} {event!r} not re-derived from its cause {cause!r}"
            )
        fold(state, entry)


def simulate(canvas: Canvas, fail_until: dict[int, int] | None = None) -> Simulator:
    """Submit and run to the end without faults, checking every entry."""
    case = Case(canvas=canvas, compiled=compile_canvas(canvas), fail_until=fail_until or {})
    sim = Simulator(case)
    expected = evaluate(canvas)
    checker = Checker(case, expected)
    sim.submit()
    sim.drain()
    checker.feed(sim.log)
    check_finished(sim, expected)
    return sim


def _bucket(n: int) -> str:
    for bound in (0, 1, 5, 20, 100):
        if n <= bound:
            return f"<={bound}"
    return ">100"


def _decidable(entries: list[Entry]) -> Any:
    return multiple(*(e for e in entries if isinstance(e.event, DECIDABLE)))


# -- random interleavings --------------------------------------------------------------


class WorkflowMachine(RuleBasedStateMachine):
    """One workflow under random deliveries, duplicates, crashes and stale projectors."""

    causes = Bundle("causes")
    """Log entries a projector may be (re)handed as its cause."""

    @initialize(target=causes, case=cases())
    def submit(self, case: Case) -> Any:
        self.sim = Simulator(case)
        self.expected = evaluate(case.canvas)
        self.checker = Checker(case, self.expected)
        return _decidable(self.sim.submit())

    # Every rule is always applicable (a no-op when there is nothing to act on): with
    # swarm testing, a run whose enabled rules all had false preconditions would stop.

    @rule(pick=st.integers(0, 255))
    def deliver(self, pick: int) -> None:
        if self.sim.queue:
            self.sim.deliver(pick)

    @rule(target=causes, pick=st.integers(0, 255), crash=st.booleans())
    def finish(self, pick: int, crash: bool) -> Any:
        if not self.sim.jobs:
            return multiple()
        job = self.sim.jobs[pick % len(self.sim.jobs)]
        return _decidable(self.sim.finish(job, project=not crash))

    @rule(pick=st.integers(0, 255))
    def lose(self, pick: int) -> None:
        if self.sim.jobs:
            self.sim.drop(self.sim.jobs[pick % len(self.sim.jobs)])

    @rule(pick=st.integers(0, 255))
    def duplicate(self, pick: int) -> None:
        if self.sim.queue:
            self.sim.duplicate(pick)

    @rule(target=causes)
    def recover(self) -> Any:
        return _decidable(self.sim.recover())

    @rule(target=causes, cause=causes)
    def project_again(self, cause: Entry) -> Any:
        return _decidable(self.sim.project(cause))

    @rule(target=causes, cause=causes, lag=st.integers(0, 40), check_conflict=st.booleans())
    def project_stale(self, cause: Entry, lag: int, check_conflict: bool) -> Any:
        return _decidable(self.sim.project_stale(cause, lag, check_conflict=check_conflict))

    @invariant()
    def log_keeps_the_contract(self) -> None:
        self.checker.feed(self.sim.log)

    def teardown(self) -> None:
        if not hasattr(self, "sim"):
            return
        self.sim.drain()
        self.checker.feed(self.sim.log)
        check_finished(self.sim, self.expected)
        d = self.sim.definition
        hypothesis.event(f"status: {self.sim.idx.status}")
        hypothesis.event(f"tasks: {_bucket(d.task_count)}")
        hypothesis.event(f"log entries: {_bucket(len(self.sim.log))}")
        for name, count in self.sim.stats.items():
            hypothesis.event(f"{name}: {_bucket(count)}")


class SerialisedMachine(WorkflowMachine):
    """``WorkflowMachine`` whose stale projectors always meet the apply script's
    serialisation: signals and resumes rely on it (a signal and its node's enqueue are
    both decisions; a resume frees the end's key), where the rest of the core is right
    on idempotency keys alone."""

    @rule(
        target=WorkflowMachine.causes,
        cause=WorkflowMachine.causes,
        lag=st.integers(0, 40),
        check_conflict=st.just(True),
    )
    def project_stale(self, cause: Entry, lag: int, check_conflict: bool) -> Any:
        return _decidable(self.sim.project_stale(cause, lag, check_conflict=check_conflict))


TestWorkflowMachine = WorkflowMachine.TestCase
# A 60-task workflow takes well over 50 steps: give faults a chance to land mid-run. The
# explain phase traces every line while replaying a failure (slow before Python 3.12, and
# says little about a state machine): without it a failure is shrunk in seconds.
TestWorkflowMachine.settings = settings(
    stateful_step_count=100, phases=[p for p in Phase if p is not Phase.explain]
)
