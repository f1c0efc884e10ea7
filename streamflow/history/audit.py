"""Audit and replay a workflow's history.

``audit(entries, definition)`` checks the log against named invariants of the contract;
``replay(entries, definition)`` checks that today's ``decide`` re-derives every decision
recorded in it. Both report what they find; neither hides a divergence.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

from streamflow.model.decide import decide
from streamflow.model.definition import NONE, Definition
from streamflow.model.events import (
    DECISIONS,
    TERMINAL,
    BarrierDecremented,
    BarrierReleased,
    Entry,
    SignalReceived,
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
)
from streamflow.model.state import State, fold, fold_all


@dataclasses.dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant, at one event."""

    invariant: str
    """``dense_seq``, ``start_after_predecessors``, ``release_once_when_covered``,
    ``enqueue_once``, ``one_outcome``, ``retry_within_policy``, ``one_end``,
    ``signal_once``, ``signal_taken_as_sent`` or ``no_timeout_after_signal``."""
    seq: int
    detail: str


@dataclasses.dataclass(frozen=True, slots=True)
class Divergence:
    """A recorded decision that today's ``decide`` does not make from its cause."""

    seq: int
    key: str
    cause: int


def audit(entries: Sequence[Entry], definition: Definition) -> list[Violation]:
    """Every violation of the contract's invariants in a log (empty: the log is clean)."""
    found: list[Violation] = []
    done: dict[int, int] = {}  # task -> seq of its success (or tolerated final failure)
    enqueued: collections.Counter[tuple[int, int]] = collections.Counter()
    outcomes: set[tuple[int, int]] = set()
    failed: dict[tuple[int, int], TaskFailed] = {}
    decremented: dict[int, set[int]] = collections.defaultdict(set)
    released: set[int] = set()
    signals: dict[str, SignalReceived] = {}
    ended = 0
    for position, entry in enumerate(entries, 1):
        event, seq = entry.event, entry.seq
        if seq != position:
            found.append(Violation("dense_seq", seq, f"expected sequence number {position}"))
        if isinstance(event, TaskEnqueued):
            key = (event.node, event.attempt)
            enqueued[key] += 1
            if enqueued[key] > 1:
                found.append(Violation("enqueue_once", seq, f"node {key[0]} attempt {key[1]}"))
            task = definition.task(event.node)
            if ended and not task.finalizer:
                found.append(Violation("one_end", seq, f"node {event.node} enqueued after the end"))
            if event.attempt > 1:
                previous = failed.get((event.node, event.attempt - 1))
                allowed = (
                    previous is not None
                    and previous.retry_delay_ms is not None
                    and (previous.later or previous.attempt <= task.options.max_retries)
                )
                if not allowed:
                    found.append(
                        Violation(
                            "retry_within_policy",
                            seq,
                            f"attempt {event.attempt} of node {event.node}",
                        )
                    )
        elif isinstance(event, TaskStarted):
            task = definition.task(event.node)
            if task.pred != NONE:
                barrier = definition.barrier(task.pred)
                missing = [s for s in barrier.sources if s not in done]
                if missing:
                    found.append(
                        Violation(
                            "start_after_predecessors",
                            seq,
                            f"node {event.node} started before {missing} succeeded",
                        )
                    )
        elif isinstance(event, (TaskSucceeded, TaskFailed)):
            key = (event.node, event.attempt)
            if key in outcomes or key not in enqueued:
                found.append(Violation("one_outcome", seq, f"node {key[0]} attempt {key[1]}"))
            outcomes.add(key)
            task = definition.task(event.node)
            if task.signal is not None:
                found += _signal_outcome(event, task.signal, signals.get(task.signal), seq)
            if isinstance(event, TaskSucceeded):
                done.setdefault(event.node, seq)
            else:
                failed[key] = event
                if event.retry_delay_ms is None and task.allow_failure:
                    done.setdefault(event.node, seq)
        elif isinstance(event, BarrierDecremented):
            decremented[event.barrier].add(event.source)
        elif isinstance(event, BarrierReleased):
            barrier = definition.barrier(event.barrier)
            if event.barrier in released:
                found.append(
                    Violation("release_once_when_covered", seq, f"barrier {event.barrier} again")
                )
            elif not decremented[event.barrier].issuperset(barrier.sources):
                found.append(
                    Violation(
                        "release_once_when_covered", seq, f"barrier {event.barrier} not covered"
                    )
                )
            released.add(event.barrier)
        elif isinstance(event, SignalReceived):
            if event.name in signals:
                found.append(Violation("signal_once", seq, f"signal {event.name!r} again"))
            signals.setdefault(event.name, event)
        elif isinstance(event, TERMINAL):
            ended += 1
            if ended > 1:
                found.append(Violation("one_end", seq, "a second terminal event"))
    return found


def _signal_outcome(
    event: TaskSucceeded | TaskFailed, name: str, received: SignalReceived | None, seq: int
) -> list[Violation]:
    """A signal node succeeds only with its signal's payload, after it; it fails (its
    wait timed out) only before it."""
    where = f"node {event.node} attempt {event.attempt}"
    if isinstance(event, TaskFailed):
        if received is None:
            return []
        return [Violation("no_timeout_after_signal", seq, f"{where} failed after {name!r} came")]
    if received is None:
        return [Violation("signal_taken_as_sent", seq, f"{where} succeeded before {name!r} came")]
    if event.result != received.payload or event.result_ref:
        return [Violation("signal_taken_as_sent", seq, f"{where}: not the payload of {name!r}")]
    return []


def _decided(event: object, definition: Definition) -> bool:
    """Whether a logged event is a decision (a signal node's success is one)."""
    if isinstance(event, TaskSucceeded):
        return definition.task(event.node).signal is not None
    return isinstance(event, DECISIONS)


def replay(entries: Sequence[Entry], definition: Definition) -> list[Divergence]:
    """Decisions in the log that ``decide`` does not re-derive from their recorded cause
    (empty: today's code makes every decision the log holds)."""
    by_seq = {entry.seq: entry for entry in entries}
    state = State()
    divergences: list[Divergence] = []
    # What decide made from each cause, the first time one of its decisions came up:
    # the closure of one cause is decided once, not once per decision (a submission
    # enqueues every root of a wide group).
    made_by: dict[int, set[str | None]] = {}
    for entry in entries:
        event = entry.event
        cause = by_seq.get(event.cause)
        if _decided(event, definition) and cause is not None:
            key = event.idempotency_key()
            made = made_by.get(cause.seq)
            if made is None or key not in made:
                made = {e.idempotency_key() for e in decide(definition, state, cause)}
                made_by[cause.seq] = made
            if key not in made:
                # The projector may have decided from the state at its cause (e.g. a
                # finalizer enqueued in the same closure as the end).
                at_cause = fold_all([e for e in entries if e.seq <= cause.seq])
                made = {e.idempotency_key() for e in decide(definition, at_cause, cause)}
            if key not in made:
                divergences.append(Divergence(entry.seq, str(key), event.cause))
        fold(state, entry)
    return divergences


def state_at(entries: Sequence[Entry], seq: int) -> State:
    """The workflow's state right after event ``seq``."""
    return fold_all(e for e in entries if e.seq <= seq)
