"""Audit and replay a workflow's history.

``audit(entries, definition)`` checks the log against named invariants of the contract;
``replay(entries, definition)`` checks that today's ``decide`` re-derives every decision
recorded in it. Both report what they find; neither hides a divergence.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Container, Sequence

from streamflow.model.decide import decide
from streamflow.model.definition import NONE, Definition
from streamflow.model.events import (
    DECISIONS,
    TERMINAL,
    BarrierDecremented,
    BarrierReleased,
    ChildStarted,
    Entry,
    Event,
    SignalReceived,
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowResumed,
    WorkflowSubmitted,
)
from streamflow.model.fork import kept, kept_of
from streamflow.model.state import State, fold, fold_all


@dataclasses.dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant, at one event."""

    invariant: str
    """``dense_seq``, ``start_after_predecessors``, ``release_once_when_covered``,
    ``enqueue_once``, ``one_outcome``, ``retry_within_policy``, ``one_end``,
    ``signal_once``, ``signal_taken_as_sent``, ``no_timeout_after_signal``,
    ``resume_after_failure``, ``succeeded_never_runs_again``,
    ``child_started_by_its_attempt``, ``child_outcome_after_child`` or (across a
    parent's and a child's logs, ``audit_child``) ``child_linked_both_ways`` and
    ``child_outcome_is_childs``."""
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
    auditor = _Audit(definition)
    for position, entry in enumerate(entries, 1):
        if entry.seq != position:
            auditor.found.append(
                Violation("dense_seq", entry.seq, f"expected sequence number {position}")
            )
        auditor.check(entry.event, entry.seq)
    return auditor.found


class _Audit:
    """What ``audit`` keeps while it reads a log, and its check of each event."""

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self.found: list[Violation] = []
        self.done: dict[int, int] = {}
        """Task -> seq of its success (or tolerated final failure)."""
        self.succeeded: set[int] = set()
        self.enqueued: collections.Counter[tuple[int, int]] = collections.Counter()
        self.outcomes: set[tuple[int, int]] = set()
        self.failed: dict[tuple[int, int], TaskFailed] = {}
        self.decremented: dict[int, set[int]] = collections.defaultdict(set)
        self.released: set[int] = set()
        self.signals: dict[str, SignalReceived] = {}
        self.resumed: dict[tuple[int, int], int] = {}
        """(node, attempt) a resume re-runs -> the attempts it had before."""
        self.base: dict[int, int] = {}
        self.ended = 0
        """Terminal events since the submission or the last resume."""
        self.failed_end = False
        self.epoch = 0
        self.children: set[tuple[int, int]] = set()
        """(node, attempt) that started a child workflow."""
        self.kept: Container[int] = ()
        """Tasks whose results a fork keeps (decided, never run)."""

    def violation(self, invariant: str, seq: int, detail: str) -> None:
        self.found.append(Violation(invariant, seq, detail))

    def check(self, event: Event, seq: int) -> None:
        if isinstance(event, WorkflowSubmitted):
            self.kept = set(kept_of(event.options))
        elif isinstance(event, TaskEnqueued):
            self.enqueue(event, seq)
        elif isinstance(event, TaskStarted):
            self.start(event, seq)
        elif isinstance(event, (TaskSucceeded, TaskFailed)):
            self.outcome(event, seq)
        elif isinstance(event, BarrierDecremented):
            self.decremented[event.barrier].add(event.source)
        elif isinstance(event, BarrierReleased):
            self.release(event, seq)
        elif isinstance(event, SignalReceived):
            if event.name in self.signals:
                self.violation("signal_once", seq, f"signal {event.name!r} again")
            self.signals.setdefault(event.name, event)
        elif isinstance(event, WorkflowResumed):
            self.resume(event, seq)
        elif isinstance(event, ChildStarted):
            self.child(event, seq)
        elif isinstance(event, TERMINAL):
            self.ended += 1
            self.failed_end = isinstance(event, WorkflowFailed)
            if self.ended > 1:
                self.violation("one_end", seq, "a second terminal event")

    def enqueue(self, event: TaskEnqueued, seq: int) -> None:
        key = (event.node, event.attempt)
        self.enqueued[key] += 1
        if self.enqueued[key] > 1:
            self.violation("enqueue_once", seq, f"node {key[0]} attempt {key[1]}")
        task = self.definition.task(event.node)
        if self.ended and not task.finalizer:
            self.violation("one_end", seq, f"node {event.node} enqueued after the end")
        if event.node in self.succeeded:
            self.violation("succeeded_never_runs_again", seq, f"node {event.node} enqueued")
        if event.attempt == 1 or key in self.resumed:
            return
        previous = self.failed.get((event.node, event.attempt - 1))
        tries = event.attempt - 1 - self.base.get(event.node, 0)
        allowed = (
            previous is not None
            and previous.retry_delay_ms is not None
            and (previous.later or tries <= task.options.max_retries)
        )
        if not allowed:
            self.violation(
                "retry_within_policy", seq, f"attempt {event.attempt} of node {event.node}"
            )

    def start(self, event: TaskStarted, seq: int) -> None:
        task = self.definition.task(event.node)
        if event.node in self.succeeded:
            self.violation("succeeded_never_runs_again", seq, f"node {event.node} started")
        if task.pred == NONE:
            return
        missing = [s for s in self.definition.barrier(task.pred).sources if s not in self.done]
        if missing:
            self.violation(
                "start_after_predecessors",
                seq,
                f"node {event.node} started before {missing} succeeded",
            )

    def outcome(self, event: TaskSucceeded | TaskFailed, seq: int) -> None:
        key = (event.node, event.attempt)
        if key in self.outcomes or key not in self.enqueued:
            self.violation("one_outcome", seq, f"node {key[0]} attempt {key[1]}")
        self.outcomes.add(key)
        task = self.definition.task(event.node)
        if event.node in self.kept and isinstance(event, TaskSucceeded):
            pass  # a fork's: the result its source had (replay checks it was decided so)
        elif task.child and isinstance(event, TaskSucceeded) and key not in self.children:
            self.violation("child_outcome_after_child", seq, f"node {key[0]} attempt {key[1]}")
        elif task.signal is not None:
            self.found += _signal_outcome(event, task.signal, self.signals.get(task.signal), seq)
        if isinstance(event, TaskSucceeded):
            self.done.setdefault(event.node, seq)
            self.succeeded.add(event.node)
        else:
            self.failed[key] = event
            if event.retry_delay_ms is None and task.allow_failure:
                self.done.setdefault(event.node, seq)

    def release(self, event: BarrierReleased, seq: int) -> None:
        barrier = self.definition.barrier(event.barrier)
        if event.barrier in self.released:
            self.violation("release_once_when_covered", seq, f"barrier {event.barrier} again")
        elif not self.decremented[event.barrier].issuperset(barrier.sources):
            self.violation("release_once_when_covered", seq, f"barrier {event.barrier} not covered")
        self.released.add(event.barrier)

    def child(self, event: ChildStarted, seq: int) -> None:
        """A child is started by a run of an enqueued attempt (a lone task's start is
        recorded only with its outcome), before its outcome and the end."""
        key = (event.node, event.attempt)
        if key not in self.enqueued or key in self.outcomes or self.ended:
            self.violation(
                "child_started_by_its_attempt",
                seq,
                f"{event.child} by node {key[0]} attempt {key[1]}",
            )
        self.children.add(key)

    def resume(self, event: WorkflowResumed, seq: int) -> None:
        """A resume follows a failure, counts its epochs, and re-runs no success."""
        if not (self.ended and self.failed_end) or event.epoch != self.epoch + 1:
            self.violation("resume_after_failure", seq, f"resume {event.epoch}")
        for node, attempt in event.nodes.items():
            if node in self.succeeded:
                self.violation("succeeded_never_runs_again", seq, f"node {node} resumed")
            self.resumed[(node, attempt)] = attempt - 1
            self.base[node] = attempt - 1
        self.epoch, self.ended, self.failed_end = event.epoch, 0, False


def audit_child(
    parent_id: str,
    parent: Sequence[Entry],
    definition: Definition,
    child_id: str,
    child: Sequence[Entry],
) -> list[Violation]:
    """What a parent's log and one child's log say of each other: the child names the
    attempt that started it (``child_linked_both_ways``), and a ``Child`` node's
    outcome is the child's (``child_outcome_is_childs``: a success only once the child
    completed, a ``ChildFailed`` only once it ended otherwise)."""
    started = next(
        (e for e in parent if isinstance(e.event, ChildStarted) and e.event.child == child_id), None
    )
    first = child[0].event if child else None
    if started is None or not isinstance(first, WorkflowSubmitted):
        return [Violation("child_linked_both_ways", 0, f"{child_id}: no link to read")]
    event = started.event
    assert isinstance(event, ChildStarted)
    link = first.options.get("parent") or {}
    expected = {"workflow_id": parent_id, "node": event.node, "attempt": event.attempt}
    found: list[Violation] = []
    if {k: link.get(k) for k in expected} != expected or bool(
        link.get("detached")
    ) != event.detached:
        found.append(
            Violation(
                "child_linked_both_ways", started.seq, f"{child_id} names {link or 'no parent'}"
            )
        )
    if not definition.task(event.node).child:
        return found
    ends = {type(e.event).__name__ for e in child if isinstance(e.event, TERMINAL)}
    completed = WorkflowCompleted.__name__ in ends
    for entry in parent:
        outcome = entry.event
        if not isinstance(outcome, TaskSucceeded | TaskFailed) or (
            (outcome.node, outcome.attempt) != (event.node, event.attempt)
        ):
            continue
        if isinstance(outcome, TaskSucceeded):
            wrong = not completed
        else:
            wrong = outcome.error.get("type") == "ChildFailed" and not (
                ends - {"WorkflowCompleted"}
            )
        if wrong:
            found.append(
                Violation(
                    "child_outcome_is_childs",
                    entry.seq,
                    f"node {event.node} attempt {event.attempt} {type(outcome).__name__}; "
                    f"child {child_id} ended {sorted(ends) or 'not yet'}",
                )
            )
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


def _decided(event: object, definition: Definition, kept: Container[int]) -> bool:
    """Whether a logged event is a decision (a signal node's success is one, and so is
    the success of a node a fork keeps)."""
    if isinstance(event, TaskSucceeded):
        return definition.task(event.node).signal is not None or event.node in kept
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
    forked = kept(fold_all(entries[:1]))
    for entry in entries:
        event = entry.event
        cause = by_seq.get(event.cause)
        if _decided(event, definition, forked) and cause is not None:
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
