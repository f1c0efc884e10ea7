"""Child workflows, property-based, on the simulated shell: random canvases with
``Child`` nodes (children within children), run under random deliveries across the
whole family, duplicated and lost messages, workers that die before or after parking or
recording, lost "child ended" messages (the sweep finds those), and children that fail
on their node's first attempt (the retry starts a new child). Each attempt starts at
most one child, each child's result is counted once (its node's one success, with the
child's result), the result is the reference model's, and every log of the family
audits clean, each child linked both ways."""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

import hypothesis
from hypothesis import given, settings
from hypothesis import strategies as st

from proptests.checker import Checker
from proptests.simulator import Case, Simulator, child_canvases, evaluate
from proptests.test_core import check_finished
from streamflow.api.canvas import Canvas, Chain, Group
from streamflow.api.children import Child
from streamflow.api.compile import compile_canvas
from streamflow.history.audit import audit_child
from streamflow.model.definition import Definition, TaskNode
from streamflow.model.events import ChildStarted, TaskFailed, TaskSucceeded
from streamflow.model.schema import COMPLETED, RUNNING
from streamflow.model.state import fold_all
from streamflow.testing import assert_audit_clean

CANVASES = child_canvases()


def _failing_plan(fail_first: bool) -> Any:
    """Children of a node that may retry fail for good on its first attempt (when they
    can: a flaky or fragile task in them), and succeed on the next."""

    def plan(task: TaskNode, attempt: int, definition: Definition) -> Mapping[int, int]:
        if not fail_first or attempt > 1 or task.options.max_retries < 1:
            return {}
        return {
            n.id: n.options.max_retries + 1
            for n in definition.nodes
            if isinstance(n, TaskNode) and n.actor in ("flaky", "fragile")
        }

    return plan


def _case(canvas: Canvas) -> Case:
    return Case(canvas=canvas, compiled=compile_canvas(canvas), fail_until={})


MOVES = ("deliver", "deliver", "finish", "finish", "crash", "drop", "duplicate", "recover")
MOVES += ("tell", "lose", "sweep")


@settings(deadline=None)
@given(canvas=CANVASES, fail_first=st.booleans(), data=st.data())
def test_each_childs_result_is_counted_once(
    canvas: Canvas, fail_first: bool, data: st.DataObject
) -> None:
    case = _case(canvas)
    sim = Simulator(case)
    sim.child_plan = _failing_plan(fail_first)  # only Child nodes that may retry fail
    expected = evaluate(canvas)
    sim.submit()
    for _ in range(data.draw(st.integers(0, 150), label="steps")):
        moves = [m for m in MOVES if _possible(sim, m)]
        if not moves:
            break
        _play(sim, data.draw(st.sampled_from(moves)), data)
    sim.drain()
    check_finished(sim, expected)
    Checker(case, expected).feed(sim.log)
    family = list(sim.family())
    for member in family:
        assert member.idx.status != RUNNING, member.workflow_id
        assert fold_all(member.log) == member.idx  # the index is the fold
        assert_audit_clean(member.log, member.definition)
        _check_children(member)
    hypothesis.event(f"children: {min(len(family) - 1, 5)}{'+' * (len(family) > 6)}")
    stats = collections.Counter[str]()
    for member in family:
        stats.update(member.stats)
    for name in ("tells_lost", "swept", "parked", "drops", "duplicates", "crashes"):
        hypothesis.event(f"{name}: {'yes' if stats[name] else 'no'}")
    takeovers = sum(1 for m in family for e in m.log if getattr(e.event, "takeover", False))
    hypothesis.event(f"takeovers: {'yes' if takeovers else 'no'}")
    hypothesis.event(f"children failed: {sum(f.idx.status != COMPLETED for f in family)}")


def _check_children(parent: Any) -> None:
    """Each attempt started at most one child, linked both ways; a Child node's one
    success is its completed child's result, counted once."""
    started = collections.Counter(
        (e.event.node, e.event.attempt) for e in parent.log if isinstance(e.event, ChildStarted)
    )
    assert all(n == 1 for n in started.values()), started
    assert set(started) == set(parent.children)
    for (node, attempt), child in parent.children.items():
        links = audit_child(
            parent.workflow_id, parent.log, parent.definition, child.workflow_id, child.log
        )
        assert links == [], links
        outcomes = [
            e.event
            for e in parent.log
            if isinstance(e.event, TaskSucceeded | TaskFailed)
            and (e.event.node, e.event.attempt) == (node, attempt)
        ]
        assert len(outcomes) <= 1, outcomes
        for outcome in outcomes:
            if isinstance(outcome, TaskSucceeded):
                assert child.idx.status == COMPLETED
                assert outcome.result == child.result().result
            else:
                assert child.idx.status != COMPLETED
                assert outcome.error["type"] == "ChildFailed"
    for node in {n for n, _ in parent.children}:
        successes = [
            e for e in parent.log if isinstance(e.event, TaskSucceeded) and e.event.node == node
        ]
        assert len(successes) <= 1, successes


def _possible(sim: Simulator, move: str) -> bool:
    family = list(sim.family())
    if move in ("deliver", "duplicate"):
        return any(m.queue for m in family)
    if move in ("finish", "crash", "drop"):
        return any(m.jobs for m in family)
    if move == "recover":
        return any(m.wakeups for m in family)
    if move in ("tell", "lose"):
        return bool(sim.ended_untold())
    return True


def _play(sim: Simulator, move: str, data: st.DataObject) -> None:
    family = list(sim.family())
    if move in ("tell", "lose"):
        parent, node, attempt = data.draw(st.sampled_from(sim.ended_untold()))
        parent.tell(node, attempt, lost=move == "lose")
        return
    if move == "sweep":
        data.draw(st.sampled_from(family)).sweep()
        return
    if move == "recover":
        data.draw(st.sampled_from([m for m in family if m.wakeups])).recover()
        return
    if move in ("deliver", "duplicate"):
        member = data.draw(st.sampled_from([m for m in family if m.queue]))
        pick = data.draw(st.integers(0, 255))
        member.deliver(pick) if move == "deliver" else member.duplicate(pick)
        return
    member = data.draw(st.sampled_from([m for m in family if m.jobs]))
    job = data.draw(st.sampled_from(member.jobs))
    {"finish": member.finish, "crash": member.crash, "drop": member.drop}[move](job)


def test_examples() -> None:
    """A child within a child, and a group of children, as a reader would write them."""
    from proptests.simulator import F

    inner = Chain(F.message(1), Child(Group(F.message(2), F.message(3))))
    canvas = Group(Child(inner), Child(F.message(4), max_retries=1), F.message(5))
    sim = Simulator(_case(canvas))
    sim.submit()
    sim.drain()
    assert sim.result().result == evaluate(canvas).value
    assert len(list(sim.family())) == 4
    for member in sim.family():
        assert_audit_clean(member.log, member.definition)
