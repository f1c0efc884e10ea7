"""Mutation checks of ``audit``: for each invariant, a deliberately wrong event sequence
made from a real, clean history is caught, under the invariant's own name.

Each history comes from ``streamflow.testing.run`` (random canvases, failures and
retries, faults drawn by hypothesis); the test first asserts that it is clean, then
breaks it one way and asserts that ``audit`` names what was broken.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import hypothesis
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from proptests.simulator import ACTORS, Case, cases
from streamflow import testing
from streamflow.history.audit import audit
from streamflow.model.definition import NONE, Definition
from streamflow.model.events import (
    TERMINAL,
    BarrierReleased,
    Entry,
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCompleted,
)

Mutation = Callable[[list[Entry], Definition, st.DataObject], list[Entry] | None]
"""Breaks a clean history one way (None: this history offers no place to do it)."""


def renumber(entries: list[Entry]) -> list[Entry]:
    """Dense sequence numbers again, so only the mutation itself is wrong."""
    return [dataclasses.replace(e, seq=i) for i, e in enumerate(entries, 1)]


def _pick(data: st.DataObject, items: list[Entry], what: str) -> Entry | None:
    return data.draw(st.sampled_from(items), label=what) if items else None


def _insert_later(
    history: list[Entry], data: st.DataObject, original: Entry, copy: Entry
) -> list[Entry]:
    """``copy`` inserted anywhere after ``original``."""
    at = data.draw(st.integers(original.seq, len(history)), label="at")
    return renumber([*history[:at], copy, *history[at:]])


def double_release(history: list[Entry], d: Definition, data: st.DataObject) -> list[Entry] | None:
    release = _pick(data, [e for e in history if isinstance(e.event, BarrierReleased)], "release")
    return None if release is None else _insert_later(history, data, release, release)


def early_start(history: list[Entry], d: Definition, data: st.DataObject) -> list[Entry] | None:
    starts = [
        e for e in history if isinstance(e.event, TaskStarted) and d.task(e.event.node).pred != NONE
    ]
    start = _pick(data, starts, "start")
    if start is None:
        return None
    assert isinstance(start.event, TaskStarted)
    sources = set(d.barrier(d.task(start.event.node).pred).sources)
    # Just before the success of one of its predecessors: that one has not succeeded yet.
    successes = [
        e for e in history if isinstance(e.event, TaskSucceeded) and e.event.node in sources
    ]
    success = _pick(data, successes, "predecessor's success")
    assert success is not None  # the node started: its predecessors succeeded
    rest = [e for e in history if e is not start]
    at = rest.index(success)
    return renumber([*rest[:at], start, *rest[at:]])


def double_enqueue(history: list[Entry], d: Definition, data: st.DataObject) -> list[Entry] | None:
    enqueue = _pick(data, [e for e in history if isinstance(e.event, TaskEnqueued)], "enqueue")
    return None if enqueue is None else _insert_later(history, data, enqueue, enqueue)


def second_outcome(history: list[Entry], d: Definition, data: st.DataObject) -> list[Entry] | None:
    outcomes = [e for e in history if isinstance(e.event, (TaskSucceeded, TaskFailed))]
    outcome = _pick(data, outcomes, "outcome")
    if outcome is None:
        return None
    assert isinstance(outcome.event, (TaskSucceeded, TaskFailed))
    event = outcome.event
    other = data.draw(
        st.sampled_from(
            [
                event,
                TaskSucceeded(node=event.node, attempt=event.attempt, result="late"),
                TaskFailed(node=event.node, attempt=event.attempt, error={}, retry_delay_ms=None),
            ]
        ),
        label="second outcome",
    )
    return _insert_later(history, data, outcome, dataclasses.replace(outcome, event=other))


def gap_in_seq(history: list[Entry], d: Definition, data: st.DataObject) -> list[Entry] | None:
    if len(history) < 3:
        return None
    # Any entry but the last (dropping the last leaves the numbers dense).
    lost = data.draw(st.integers(0, len(history) - 2), label="lost entry")
    return [*history[:lost], *history[lost + 1 :]]


def second_end(history: list[Entry], d: Definition, data: st.DataObject) -> list[Entry] | None:
    end = next(e for e in history if isinstance(e.event, TERMINAL))
    copy = data.draw(
        st.sampled_from([end, dataclasses.replace(end, event=WorkflowCompleted(cause=end.seq))]),
        label="second end",
    )
    return _insert_later(history, data, end, copy)


def retry_beyond_policy(
    history: list[Entry], d: Definition, data: st.DataObject
) -> list[Entry] | None:
    outcomes = [e for e in history if isinstance(e.event, (TaskSucceeded, TaskFailed))]
    outcome = _pick(data, outcomes, "outcome")
    if outcome is None:
        return None
    event = outcome.event
    assert isinstance(event, (TaskSucceeded, TaskFailed))
    retry = TaskEnqueued(node=event.node, attempt=event.attempt + 1, cause=outcome.seq)
    hypothesis.event(f"retry after a {type(event).__name__}")
    if isinstance(event, TaskFailed) and event.retry_delay_ms is None:
        # A final failure that a wrong worker called retryable: past max_retries.
        retryable = dataclasses.replace(event, retry_delay_ms=10)
        history = [dataclasses.replace(e, event=retryable) if e is outcome else e for e in history]
        outcome = history[outcome.seq - 1]
    elif isinstance(event, TaskFailed):
        return None  # a retry within policy: already in the log
    # else: a retry of a success
    return _insert_later(history, data, outcome, dataclasses.replace(outcome, event=retry))


MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "double release": (double_release, "release_once_when_covered"),
    "early start": (early_start, "start_after_predecessors"),
    "duplicate enqueue": (double_enqueue, "enqueue_once"),
    "second outcome": (second_outcome, "one_outcome"),
    "gap in sequence numbers": (gap_in_seq, "dense_seq"),
    "second end": (second_end, "one_end"),
    "retry beyond policy": (retry_beyond_policy, "retry_within_policy"),
}


@pytest.mark.parametrize("kind", list(MUTATIONS))
@given(case=cases(max_tasks=12, max_width=8), data=st.data())
def test_audit_names_each_kind_of_mutation(kind: str, case: Case, data: st.DataObject) -> None:
    mutate, invariant = MUTATIONS[kind]
    result = testing.run(case.compiled, actors=ACTORS, fail_until=case.fail_until, data=data)
    history, d = result.history, result.definition
    testing.assert_audit_clean(history, d)
    mutated = mutate(history, d, data)
    assume(mutated is not None)
    assert mutated is not None
    found = audit(mutated, d)
    hypothesis.event(f"violations: {sorted({v.invariant for v in found})}")
    assert invariant in {v.invariant for v in found}, f"{kind}: audit found only {found}"
    with pytest.raises(AssertionError, match=invariant):
        testing.assert_audit_clean(mutated, d)
