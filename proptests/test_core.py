"""Property-based tests of the pure core (canvas compiler, definition, fold, decide), no Redis.

Random canvases run through ``proptests.simulator``, a model of the shell (scripts,
workers, projectors) with duplicated, redelivered and lost messages, crashes between
outcome and projection, recovery projections and stale projectors. Every entry of the
log is checked against contract items 1 and 2 (DESIGN §1) as it is appended, and the
final result against a direct recursive evaluation of the canvas; every finished log
must also pass ``streamflow.audit.audit`` and ``replay``.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from proptests.checker import Checker
from proptests.simulator import (
    DECIDABLE,
    FLAKY,
    FRAGILE,
    NOTHING,
    Case,
    Expected,
    F,
    H,
    Simulator,
    canvases,
    cases,
    evaluate,
    rebuild,
    task_ids,
)
from streamflow.api.canvas import Canvas, Chain, Group, WithDelay
from streamflow.api.compile import compile_canvas
from streamflow.model import codec
from streamflow.model.decide import decide, decide_all
from streamflow.model.definition import (
    NONE,
    BarrierNode,
    Definition,
    TaskNode,
    assemble,
    spec_leaves,
)
from streamflow.model.events import (
    DECISIONS,
    TERMINAL,
    BarrierDecremented,
    Entry,
    Event,
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowResumed,
    WorkflowSubmitted,
)
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


# -- compiling -------------------------------------------------------------------------


@given(canvases())
def test_compiled_definition_matches_the_canvas(canvas: Canvas) -> None:
    compiled = compile_canvas(canvas)
    d = compiled.definition
    expected = evaluate(canvas)

    # Deterministic, content-addressed, and the stored form round-trips.
    assert compile_canvas(canvas).definition.hash == d.hash
    assert compile_canvas(rebuild(canvas)).definition.hash == d.hash
    again = Definition.from_bytes(d.to_bytes)
    assert again == d
    assert again.hash == d.hash

    # Task nodes are the messages, in canvas order, with their arguments and delays.
    ids = task_ids(d)
    assert [d.task(n).actor for n in ids] == [m.actor_name for m in expected.messages]
    assert [d.task(n).options for n in ids] == [m.options for m in expected.messages]
    assert [d.task(n).delay_ms for n in ids] == expected.delays_ms
    for node, message in zip(ids, expected.messages, strict=True):
        if message.args or message.kwargs:
            assert codec.decode(compiled.args[node]) == [list(message.args), dict(message.kwargs)]
        else:
            assert node not in compiled.args
    # A task is piped exactly when the reference pipes something into it.
    for node, piped in zip(ids, expected.inputs, strict=True):
        assert (d.task(node).pipe == NONE) == (piped is NOTHING)

    # Barriers: never empty on either side, wired both ways, and piped input only ever
    # comes from tasks the receiving node waits for.
    for node in d.nodes:
        if isinstance(node, BarrierNode):
            assert node.sources and node.targets
            assert all(d.task(s).succ == node.id for s in node.sources)
            assert all(d.task(t).pred == node.id for t in node.targets)
        else:
            assert isinstance(node, TaskNode)
            if node.pred != NONE:
                assert node.id in d.barrier(node.pred).targets
                assert set(d.pipe_leaves(node.id)) <= set(d.barrier(node.pred).sources)
            else:
                assert d.pipe_leaves(node.id) == []
            if node.succ != NONE:
                assert node.id in d.barrier(node.succ).sources
    leaves = spec_leaves(d.root_spec)
    assert len(set(leaves)) == len(leaves)
    assert set(leaves) <= set(d.sinks)
    assert (d.task_count == 0) == (d.roots == ())


@given(st.integers(0, 20), st.integers(0, 20))
def test_edges_of_chain_of_two_groups(n: int, m: int) -> None:
    first = Group(*(F.message(i) for i in range(n)))
    second = Group(*(H.message(i) for i in range(m)))
    d = compile_canvas(Chain(first, second)).definition
    # A barrier between the groups: n sources and m targets, not n * m edges. With an
    # empty side there is nothing to wait for or nothing to release: no barrier at all.
    assert d.edge_count == (n + m if n and m else 0)


# -- folding ---------------------------------------------------------------------------


@given(cases(max_tasks=20), st.data())
def test_fold_is_deterministic_and_ignores_overlap(case: Case, data: st.DataObject) -> None:
    sim = Simulator(case)
    sim.submit()
    for _ in range(data.draw(st.integers(0, 30), label="faulty steps")):
        if sim.jobs and data.draw(st.booleans()):
            sim.finish(sim.jobs[0], project=data.draw(st.booleans()))
        elif sim.queue:
            sim.deliver(data.draw(st.integers(0, 255)))
            if data.draw(st.booleans()) and sim.queue:
                sim.duplicate(0)
    sim.drain()
    log = sim.log
    assert_audit_clean(log, case.definition)
    whole = fold_all(log)
    assert fold_all(log) == whole
    assert fold_all(log, whole.copy()) == whole  # refolding changes nothing

    # Catching up in overlapping chunks, as a projector reading from its last id does.
    state = State()
    done = 0
    while done < len(log):
        start = data.draw(st.integers(max(0, done - 3), done), label="chunk start")
        end = data.draw(st.integers(done + 1, len(log)), label="chunk end")
        fold_all(log[start:end], state)  # entries already folded are ignored
        done = end
    assert state == whole
    assert index_fields(state, case.definition) == index_fields(whole, case.definition)

    # A snapshot stays put while its original folds on.
    cut = data.draw(st.integers(0, len(log)), label="cut")
    prefix = fold_all(log[:cut])
    snapshot = prefix.copy()
    fold_all(log[cut:], prefix)
    assert snapshot == fold_all(log[:cut])
    assert prefix == whole


# -- examples --------------------------------------------------------------------------


def test_reference_evaluation_examples() -> None:
    a, b = F.message(1), F.message(2)
    assert evaluate(Chain(a, b)).value == ["f", 2, ["f", 1]]
    assert evaluate(Chain(a, Group(), b)).value == ["f", 2, []]
    assert evaluate(Chain(a, Group(b, b))).value == [["f", 2, ["f", 1]]] * 2
    assert evaluate(Group(Chain(a, b), a)).value == [["f", 2, ["f", 1]], ["f", 1]]
    assert evaluate(Chain(a, Group(Chain(Group(), b)))).value == [["f", 2, []]]
    ignore = F.message_with_options(args=[3], pipe_ignore=True)
    assert evaluate(Chain(a, ignore)).value == ["f", 3]
    assert evaluate(WithDelay(Chain(a, b), 1)).delays_ms == [1000, 0]
    assert evaluate(Group()).value == []


@pytest.mark.parametrize(
    "canvas",
    [
        pytest.param(Group(), id="empty group"),
        pytest.param(Chain(Group(), Group()), id="chain of empty groups"),
        pytest.param(Chain(F.message(1), Group(), F.message(2)), id="empty step piped on"),
        pytest.param(Chain(Group(), F.message(2)), id="empty first step"),
        pytest.param(Chain(F.message(1), Group()), id="empty last step"),
        pytest.param(
            Chain(Group(Chain(F.message(1), Group()), F.message(2)), F.message(3)),
            id="empty step inside a group",
        ),
        pytest.param(
            Chain(F.message(0), WithDelay(Group(Chain(Group(), H.message(1)), F.message()), 1)),
            id="delayed group of chains",
        ),
    ],
)
def test_edge_canvases_complete_with_the_reference_result(canvas: Canvas) -> None:
    simulate(canvas)


def test_retries_then_success_and_final_failure() -> None:
    canvas = Chain(FLAKY.message(1), Group(FRAGILE.message(2), F.message(3)), F.message(4))
    sim = simulate(canvas, {0: 2})  # two retries, then success
    assert fold_all(sim.log).attempt[0] == 3
    sim = simulate(canvas, {0: 3})  # retries exhausted
    assert fold_all(sim.log).status == FAILED
    sim = simulate(canvas, {2: 1})  # no retries
    end = sim.log[-1].event
    assert isinstance(end, WorkflowFailed)
    assert end.error["node"] == 2


# -- regressions found by the machine --------------------------------------------------

_ERROR = {"type": "Boom", "message": "boom", "traceback": ""}


def _entries(*events: Event) -> list[Entry]:
    return [Entry(seq=i, stream_id=f"{i}-0", event=e) for i, e in enumerate(events, 1)]


def _submitted(definition: Definition) -> WorkflowSubmitted:
    return WorkflowSubmitted(def_hash=definition.hash, args={}, options={}, engine_version="t")


def test_recovery_after_an_unprojected_final_failure_fails_the_workflow() -> None:
    # One task fails for good; the worker dies before projecting; a recovery projection
    # (decide_all) must fail the workflow, not complete it.
    d = compile_canvas(FRAGILE.message()).definition
    log = _entries(
        _submitted(d),
        TaskEnqueued(node=0, attempt=1, cause=1),
        TaskStarted(node=0, attempt=1, worker="w", msg_id="m0"),
        TaskFailed(node=0, attempt=1, error=_ERROR, retry_delay_ms=None, cause=3),
    )
    decisions = decide_all(d, fold_all(log), log)
    assert [type(e) for e in decisions] == [WorkflowFailed]


def test_a_success_projected_before_a_final_failure_does_not_complete() -> None:
    # Group(fragile, f): the failure of node 0 is recorded, then node 1's success; the
    # success's projection runs first (it folds both outcomes). It must not complete.
    d = compile_canvas(Group(FRAGILE.message(), F.message())).definition
    log = _entries(
        _submitted(d),
        TaskEnqueued(node=0, attempt=1, cause=1),
        TaskEnqueued(node=1, attempt=1, cause=1),
        TaskStarted(node=0, attempt=1, worker="w", msg_id="m0"),
        TaskStarted(node=1, attempt=1, worker="w", msg_id="m1"),
        TaskFailed(node=0, attempt=1, error=_ERROR, retry_delay_ms=None, cause=4),
        TaskSucceeded(node=1, attempt=1, result=["f"], cause=5),
    )
    assert not any(isinstance(e, WorkflowCompleted) for e in decide(d, fold_all(log), log[-1]))


def test_recovery_decides_nothing_after_the_end() -> None:
    # Group(fragile, Chain(f, f)): node 0 fails for good and node 1 succeeds, neither
    # projected. decide_all yields WorkflowFailed (cause 6) and then, for cause 7, the
    # release and the enqueue of node 3: applied in one batch, they land after the
    # terminal event and enqueue a task of a failed workflow.
    d = compile_canvas(Group(FRAGILE.message(), Chain(F.message(), F.message()))).definition
    log = _entries(
        _submitted(d),
        TaskEnqueued(node=0, attempt=1, cause=1),
        TaskEnqueued(node=1, attempt=1, cause=1),
        TaskStarted(node=0, attempt=1, worker="w", msg_id="m0"),
        TaskStarted(node=1, attempt=1, worker="w", msg_id="m1"),
        TaskFailed(node=0, attempt=1, error=_ERROR, retry_delay_ms=None, cause=4),
        TaskSucceeded(node=1, attempt=1, result=["f"], cause=5),
        BarrierDecremented(barrier=2, source=1, cause=7),
    )
    decisions = decide_all(d, fold_all(log), log)
    ends = [i for i, e in enumerate(decisions) if isinstance(e, TERMINAL)]
    assert len(ends) == 1
    assert decisions[ends[0] + 1 :] == [], f"decided after the end: {decisions}"
