"""The pure core's state: ``fold`` (log -> state), and what a state says of its tasks.

No I/O, no clock, no randomness: times come from the events' stream ids and anything
random (retry jitter) is drawn by the shell and recorded in the event that needs it.

``fold`` updates ``state`` in place and returns it (a reducer that owns its state): a
copy per event would make folding a 100,000-event log quadratic. Use ``State.copy`` to
keep a snapshot.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Container, Iterable
from typing import Any

from streamflow.model.definition import Definition, TaskNode
from streamflow.model.events import (
    TERMINAL,
    BarrierDecremented,
    BarrierReleased,
    ChildStarted,
    Entry,
    Event,
    OutOfLine,
    SignalReceived,
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowResumed,
    WorkflowSubmitted,
)
from streamflow.model.schema import (
    CANCELLED,
    COMPLETED,
    END,
    FAILED,
    PENDING,
    RUNNING,
    TERMINAL_STATUSES,
)


@dataclasses.dataclass(slots=True)
class State:
    """Everything the log says about one workflow, as of sequence number ``n``."""

    n: int = 0
    """Sequence number of the last event folded."""
    size: int = 0
    """Encoded size in bytes of the events folded (as far as their entries tell it)."""
    last_id: str = "0-0"
    """Stream id of the last event folded."""
    last_decision: int = 0
    """Sequence number of the last decision (enqueue, release, terminal)."""
    status: str = PENDING
    def_hash: str = ""
    args: dict[int, bytes] = dataclasses.field(default_factory=dict)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    submitted_ms: int = 0
    finished_ms: int = 0
    end: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The terminal event's data: ``error`` or ``reason``."""
    keys: dict[str, str] = dataclasses.field(default_factory=dict)
    """Idempotency key -> stream id of the event holding it."""
    attempt: dict[int, int] = dataclasses.field(default_factory=dict)
    """Task node -> its latest enqueued attempt."""
    owner: dict[int, str] = dataclasses.field(default_factory=dict)
    """Task node -> queue message id that first started its current attempt (or took it
    over)."""
    deliveries: dict[int, int] = dataclasses.field(default_factory=dict)
    """Task node -> TaskStarted events of its current attempt."""
    results: dict[int, Any] = dataclasses.field(default_factory=dict)
    """Task node -> its result (success only)."""
    result_ids: dict[int, str] = dataclasses.field(default_factory=dict)
    """Task node -> stream id of its TaskSucceeded."""
    failures: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Task node -> error of its final failure."""
    failure_ids: dict[int, str] = dataclasses.field(default_factory=dict)
    """Task node -> stream id of its final TaskFailed."""
    exhausted: set[int] = dataclasses.field(default_factory=set)
    """Task nodes whose final failure exhausted their retries."""
    decremented: dict[int, set[int]] = dataclasses.field(default_factory=dict)
    """Barrier -> sources recorded as succeeded."""
    released: set[int] = dataclasses.field(default_factory=set)
    signals: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Signal name -> its payload, for each signal received."""
    epoch: int = 0
    """How many times the workflow has been resumed."""
    retry_base: dict[int, int] = dataclasses.field(default_factory=dict)
    """Task node -> attempts it had before the last resume (its retries count on)."""
    children: dict[str, ChildStarted] = dataclasses.field(default_factory=dict)
    """Child workflow id -> the event that started it, in the order started."""

    def copy(self) -> State:
        return copy.deepcopy(self)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def fold(state: State, entry: Entry) -> State:
    """Apply one log entry to ``state`` (in place) and return it.

    Entries at or below ``state.n`` were already folded and are ignored, so catching up
    from overlapping reads is safe.
    """
    if entry.seq <= state.n:
        return state
    state.n = entry.seq
    state.size += entry.size
    state.last_id = entry.stream_id
    event = entry.event
    key = event.idempotency_key()
    if key is not None:
        state.keys[key] = entry.stream_id
    if isinstance(event, TaskStarted):
        if state.attempt.get(event.node) == event.attempt:
            if event.takeover:
                state.owner[event.node] = event.msg_id
            else:
                state.owner.setdefault(event.node, event.msg_id)
            state.deliveries[event.node] = state.deliveries.get(event.node, 0) + 1
    elif isinstance(event, TaskSucceeded):
        state.results[event.node] = (
            OutOfLine(event.result_ref) if event.result_ref else event.result
        )
        state.result_ids[event.node] = entry.stream_id
    elif isinstance(event, BarrierDecremented):
        state.decremented.setdefault(event.barrier, set()).add(event.source)
    elif isinstance(event, TaskEnqueued):
        state.attempt[event.node] = event.attempt
        state.owner.pop(event.node, None)
        state.deliveries.pop(event.node, None)
        state.last_decision = entry.seq
    elif isinstance(event, TaskFailed):
        if event.retry_delay_ms is None:
            state.failures[event.node] = event.error
            state.failure_ids[event.node] = entry.stream_id
            if event.exhausted:
                state.exhausted.add(event.node)
    elif isinstance(event, BarrierReleased):
        state.released.add(event.barrier)
        state.last_decision = entry.seq
    elif isinstance(event, SignalReceived):
        state.signals[event.name] = event.payload
        state.last_decision = entry.seq
    elif isinstance(event, WorkflowResumed):
        _resume(state, event, entry.seq)
    elif isinstance(event, ChildStarted):
        state.children[event.child] = event
    elif isinstance(event, WorkflowSubmitted):
        state.status = RUNNING
        state.def_hash = event.def_hash
        state.args = event.args
        state.options = event.options
        state.submitted_ms = entry.time_ms
    elif isinstance(event, TERMINAL):
        state.status = _END_STATUS[type(event)]
        state.finished_ms = entry.time_ms
        state.last_decision = entry.seq
        if isinstance(event, WorkflowFailed):
            state.end = {"error": event.error}
        elif isinstance(event, WorkflowCancelled):
            state.end = {"reason": event.reason}
    return state


def _resume(state: State, event: WorkflowResumed, seq: int) -> None:
    """The workflow runs again: its end is undone (the ``end`` key is free for the next
    one) and the nodes it re-runs forget their final failures."""
    state.status = RUNNING
    state.epoch = event.epoch
    state.finished_ms = 0
    state.end = {}
    state.keys.pop(END, None)
    state.last_decision = seq
    for node, attempt in event.nodes.items():
        state.failures.pop(node, None)
        state.failure_ids.pop(node, None)
        state.exhausted.discard(node)
        state.retry_base[node] = attempt - 1


_END_STATUS: dict[type[Event], str] = {
    WorkflowCompleted: COMPLETED,
    WorkflowFailed: FAILED,
    WorkflowCancelled: CANCELLED,
}


def fold_all(entries: Iterable[Entry], state: State | None = None) -> State:
    """Fold every entry, starting from ``state`` or an empty one."""
    state = state if state is not None else State()
    for entry in entries:
        fold(state, entry)
    return state


def task_counts(definition: Definition, state: State) -> dict[str, int]:
    """Tasks per state, from a fold."""
    started = {node for node, count in state.deliveries.items() if count}
    return count_tasks(definition, state.results, state.failures, state.attempt, started)


def count_tasks(
    definition: Definition,
    succeeded: Container[int],
    failed: Container[int],
    enqueued: Container[int],
    started: Container[int],
) -> dict[str, int]:
    """Tasks per state: ``succeeded``, ``failed`` (for good), ``waiting`` (never
    enqueued), ``running`` (its current attempt started), else ``queued``."""
    counts = dict.fromkeys(("waiting", "queued", "running", "succeeded", "failed"), 0)
    for node in definition.nodes:
        if not isinstance(node, TaskNode):
            continue
        if node.id in succeeded:
            counts["succeeded"] += 1
        elif node.id in failed:
            counts["failed"] += 1
        elif node.id not in enqueued:
            counts["waiting"] += 1
        elif node.id in started:
            counts["running"] += 1
        else:
            counts["queued"] += 1
    return counts
