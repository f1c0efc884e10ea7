"""Forks, property-based, on the simulated shell: a random workflow runs (its tasks
failing for good now and then) under random faults, then a fork from a random task node
runs under random faults too. The fork ends with the reference result; no task it keeps
ever starts, and every task it runs again follows from the node it was forked from; both
logs audit clean and replay."""

from __future__ import annotations

import hypothesis
from hypothesis import given, settings
from hypothesis import strategies as st

from proptests.checker import Checker
from proptests.simulator import Case, Simulator, cases, evaluate
from proptests.test_core import check_finished
from streamflow.model.definition import TASK, TaskNode
from streamflow.model.events import TaskStarted
from streamflow.model.fork import FORK, descendants, kept_results
from streamflow.testing import assert_audit_clean

MOVES = ("deliver", "deliver", "finish", "crash", "drop", "duplicate", "recover", "stale")


def _run(sim: Simulator, data: st.DataObject) -> None:
    """Random steps, then a drain."""
    for _ in range(data.draw(st.integers(0, 120), label="steps")):
        moves = [m for m in MOVES if _possible(sim, m)]
        if not moves:
            break
        move = data.draw(st.sampled_from(moves))
        if move == "deliver":
            sim.deliver(data.draw(st.integers(0, 255)))
        elif move == "duplicate":
            sim.duplicate(data.draw(st.integers(0, 255)))
        elif move == "recover":
            sim.recover()
        elif move == "stale":
            cause = data.draw(st.sampled_from(sim.log))
            sim.project_stale(cause, data.draw(st.integers(0, 5)))
        else:
            job = data.draw(st.sampled_from(sim.jobs))
            {"finish": sim.finish, "crash": sim.crash, "drop": sim.drop}[move](job)
    sim.drain()


def _possible(sim: Simulator, move: str) -> bool:
    if move in ("deliver", "duplicate"):
        return bool(sim.queue)
    if move in ("finish", "crash", "drop"):
        return bool(sim.jobs)
    if move == "recover":
        return bool(sim.wakeups)
    return True


@settings(deadline=None)
@given(case=cases(max_width=8, max_tasks=20, max_items=40), data=st.data())
def test_a_fork_keeps_what_it_does_not_run_again(case: Case, data: st.DataObject) -> None:
    expected = evaluate(case.canvas)
    source = Simulator(case)
    source.submit()
    _run(source, data)
    definition = case.definition
    tasks = [n.id for n in definition.nodes if isinstance(n, TaskNode) and n.role == TASK]
    if not tasks:
        return
    node = data.draw(st.sampled_from(tasks), label="forked from")
    kept = kept_results(definition, source.idx, node)
    fork_case = Case(canvas=case.canvas, compiled=case.compiled, fail_until={})
    fork = Simulator(fork_case)
    fork.options = {FORK: {"workflow_id": "0-51", "node": node, "results": kept}}
    fork.submit()
    _run(fork, data)
    check_finished(fork, expected)  # completed, with the reference result
    Checker(fork_case, expected).feed(fork.log)
    ran = {e.event.node for e in fork.log if isinstance(e.event, TaskStarted)}
    assert not ran & set(kept), f"kept tasks ran: {sorted(ran & set(kept))}"
    rerun = descendants(definition, node)
    assert ran <= rerun | {n for n in tasks if n not in source.idx.results}, sorted(ran)
    assert node in ran
    assert_audit_clean(source.log, definition)
    hypothesis.event(f"source: {source.idx.status}")
    hypothesis.event(f"kept: {min(len(kept), 5)}{'+' if len(kept) > 5 else ''}")
