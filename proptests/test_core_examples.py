"""Examples of the pure core, no Redis: the reference evaluation on small canvases; edge
canvases (empty groups and steps, a delayed group of chains) and retries run to the end
on the simulated shell, checked as ``proptests.test_core`` checks its runs; and hand-written
logs for the regressions the machine found in ``decide`` and ``decide_all`` (a recovery
after an unprojected final failure, a success projected before a final failure, nothing
decided after the end).
"""

from __future__ import annotations

import pytest

from proptests.simulator import FLAKY, FRAGILE, F, H, evaluate
from proptests.test_core import simulate
from streamflow.api.canvas import Canvas, Chain, Group, WithDelay
from streamflow.api.compile import compile_canvas
from streamflow.model.decide import decide, decide_all
from streamflow.model.definition import Definition
from streamflow.model.events import (
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
    WorkflowSubmitted,
)
from streamflow.model.schema import FAILED
from streamflow.model.state import fold_all

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
