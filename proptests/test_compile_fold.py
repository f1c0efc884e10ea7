"""The canvas compiler and the fold, property-based, no Redis: a random canvas compiles
deterministically to a content-addressed definition that round-trips and matches a direct
recursive evaluation of the canvas (tasks in canvas order, arguments, delays, pipes, and
barriers wired both ways); a chain of two groups has n + m edges, not n * m; and folding
a log written under faults is deterministic, ignores entries already folded (overlapping
chunks, as a projector catching up reads them) and leaves a snapshot put.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proptests.simulator import (
    NOTHING,
    Case,
    F,
    H,
    Simulator,
    canvases,
    cases,
    evaluate,
    rebuild,
    task_ids,
)
from streamflow.api.canvas import Canvas, Chain, Group
from streamflow.api.compile import compile_canvas
from streamflow.model import codec
from streamflow.model.definition import NONE, BarrierNode, Definition, TaskNode, spec_leaves
from streamflow.model.index import index_fields
from streamflow.model.state import State, fold_all
from streamflow.testing import assert_audit_clean

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
