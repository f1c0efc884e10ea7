"""The pure core's decisions: ``decide`` (what must follow an event) and ``finished``.

Decisions are monotone - they depend on facts present in the log, never on the absence
of a fact other than a terminal status - so a projector with a stale fold can only be
late, never wrong. ``decide`` returns the whole closure for one cause (decrement ->
release -> enqueues -> completion) so that one script call applies it.
"""

from __future__ import annotations

from collections.abc import Iterable

from streamflow.model import schema
from streamflow.model.definition import NONE, TASK, Definition, TaskNode
from streamflow.model.events import (
    TERMINAL,
    BarrierDecremented,
    BarrierReleased,
    Entry,
    Event,
    HistoryWarning,
    SignalReceived,
    TaskEnqueued,
    TaskFailed,
    TaskSucceeded,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowResumed,
    WorkflowSubmitted,
)
from streamflow.model.fork import kept
from streamflow.model.schema import RUNNING
from streamflow.model.state import State


class _Closure:
    """Decisions being gathered for one cause, each at most once."""

    def __init__(self, state: State, cause: int) -> None:
        self.state = state
        self.cause = cause
        self.events: list[Event] = []
        self.keys: set[str] = set()
        self.facts_only = False
        """Past the history limit: only decrements (facts of an outcome) are decided."""
        self.successes: set[int] = set()
        """Nodes whose success this closure decides (signal nodes)."""

    def ensure(self, event: Event) -> bool:
        key = event.idempotency_key()
        assert key is not None
        if key in self.state.keys or key in self.keys:
            return False
        if self.facts_only and not isinstance(event, BarrierDecremented):
            return False
        self.keys.add(key)
        self.events.append(event)
        if isinstance(event, TaskSucceeded):
            self.successes.add(event.node)
        return True

    def has(self, key: str) -> bool:
        return key in self.state.keys or key in self.keys

    def succeeded(self, node: int) -> bool:
        """Whether ``node`` succeeded, in the log or in this closure (a signal node's
        success is decided)."""
        return node in self.state.results or node in self.successes


def decide(definition: Definition, state: State, entry: Entry) -> list[Event]:
    """What must follow ``entry``, given ``state`` (which has folded it).

    Returns the whole closure (decrement -> release -> enqueues -> completion), without
    events the log already holds. Once the workflow has ended nothing more is decided,
    except retries of its finalizers (callbacks, which may run after the end).
    """
    closure = _Closure(state, entry.seq)
    event = entry.event
    if state.status != RUNNING:
        finalizer = isinstance(event, TaskFailed) and definition.task(event.node).finalizer
        if state.terminal and finalizer:
            assert isinstance(event, TaskFailed)
            _retry(definition, closure, event)
        return closure.events
    closure.facts_only = _over_budget(closure)
    if isinstance(event, WorkflowSubmitted):
        for root in definition.roots:
            _enqueue(definition, closure, root, 1, definition.task(root).delay_ms)
        _check_complete(definition, closure)
    elif isinstance(event, WorkflowResumed):
        for node, attempt in event.nodes.items():
            _enqueue(definition, closure, node, attempt, 0)
        _check_complete(definition, closure)
    elif isinstance(event, TaskSucceeded):
        _succeeded(definition, closure, event.node)
    elif isinstance(event, SignalReceived):
        for node in definition.signals.get(event.name, ()):
            _take_known(definition, closure, node)
    elif isinstance(event, TaskEnqueued):
        # Recovery re-checks enqueues: a signal may have come before its node was reached.
        _take_known(definition, closure, event.node)
    elif isinstance(event, TaskFailed):
        _failed(definition, closure, event)
    elif isinstance(event, BarrierDecremented):
        _check_barrier(definition, closure, event.barrier)
    elif isinstance(event, BarrierReleased):
        for target in definition.barrier(event.barrier).targets:
            _enqueue(definition, closure, target, 1, definition.task(target).delay_ms)
    if closure.facts_only:
        _fail_over_budget(definition, closure)
    return closure.events


HISTORY_LIMIT_EXCEEDED = "HistoryLimitExceeded"
"""``error["type"]`` of a workflow failed because its log grew past its budget."""


def _over_budget(closure: _Closure) -> bool:
    """Whether the log is past its budget's limit; past its warning size, warn once.

    The budget is the submission's ``history`` option: ``[warn events, warn bytes, max
    events, max bytes]`` (absent: none). Past the limit the workflow fails and nothing is
    scheduled any more; the decrements an outcome implies are still recorded (they are
    facts, and the outcome script appends them itself).
    """
    state = closure.state
    budget = state.options.get("history")
    if not budget:
        return False
    warn_events, warn_bytes, max_events, max_bytes = budget
    if state.n >= max_events or state.size >= max_bytes:
        return True
    if (state.n >= warn_events or state.size >= warn_bytes) and not closure.has(
        schema.HISTORY_WARNING
    ):
        closure.ensure(HistoryWarning(events=state.n, bytes=state.size, cause=closure.cause))
    return False


def _fail_over_budget(definition: Definition, closure: _Closure) -> None:
    closure.facts_only = False
    state = closure.state
    _, _, max_events, max_bytes = state.options["history"]
    message = (
        f"the history has {state.n} events ({state.size} bytes), over its limit of "
        f"{max_events} events or {max_bytes} bytes"
    )
    error = {"type": HISTORY_LIMIT_EXCEEDED, "message": message}
    closure.ensure(WorkflowFailed(error=error, cause=closure.cause))
    if definition.on_failure != NONE:
        _enqueue(definition, closure, definition.on_failure, 1, 0)


def decide_all(definition: Definition, state: State, entries: Iterable[Entry]) -> list[Event]:
    """The union of ``decide`` over ``entries`` (for recovery: anything left undone)."""
    out: list[Event] = []
    seen: set[str] = set()
    ended = False
    for entry in entries:
        for event in decide(definition, state, entry):
            key = event.idempotency_key()
            if key in seen:
                continue
            # After an end decided by an earlier cause, only finalizers may follow.
            finalizer = isinstance(event, TaskEnqueued) and definition.task(event.node).finalizer
            if ended and not finalizer:
                continue
            seen.add(key)  # type: ignore[arg-type]
            out.append(event)
            ended = ended or isinstance(event, TERMINAL)
    return out


def _enqueue(
    definition: Definition, closure: _Closure, node: int, attempt: int, delay_ms: int
) -> None:
    enqueued = TaskEnqueued(node=node, attempt=attempt, delay_ms=delay_ms, cause=closure.cause)
    fresh = closure.ensure(enqueued)
    if definition.task(node).signal is not None or node in kept(closure.state):
        _take_known(definition, closure, node, attempt if fresh else None)


def _succeeded(definition: Definition, closure: _Closure, node: int) -> None:
    task = definition.task(node)
    if task.role == TASK:
        if task.on_success != NONE:
            _enqueue(definition, closure, task.on_success, 1, 0)
        _done(definition, closure, node)
    else:
        _check_complete(definition, closure)


def _take_known(
    definition: Definition, closure: _Closure, node: int, attempt: int | None = None
) -> None:
    """A node whose result is known without running it succeeds with it, once: a signal
    node whose signal was received (its payload), or a node a fork keeps (its result in
    the workflow it was forked from). Its current attempt (``attempt``: one enqueued in
    this closure) takes it, if it has no outcome yet. The apply script refuses the
    success if a worker recorded one meanwhile (a signal node's timeout), and the
    decision is made again."""
    state = closure.state
    name = definition.task(node).signal
    known = kept(state).get(node)  # a fork's first (a signal node's too)
    if known is not None:
        result, ref = known
    elif name is not None and name in state.signals:
        result, ref = state.signals[name], ""
    else:
        return
    if node in state.results:
        # Taken already: what follows is still decided from here (monotone: a fold
        # past the success decides from it what it did before it).
        _succeeded(definition, closure, node)
        return
    attempt = attempt if attempt is not None else state.attempt.get(node)
    if attempt is None:
        return  # not reached yet: its enqueue takes it
    success = TaskSucceeded(
        node=node, attempt=attempt, result=result, result_ref=ref, cause=closure.cause
    )
    if closure.ensure(success):
        _succeeded(definition, closure, node)


def _done(definition: Definition, closure: _Closure, node: int) -> None:
    """A task of the canvas is done (succeeded, or failed with allow_failure)."""
    barrier = definition.task(node).succ
    if barrier == NONE:
        _check_complete(definition, closure)
        return
    closure.ensure(BarrierDecremented(barrier=barrier, source=node, cause=closure.cause))
    _check_barrier(definition, closure, barrier)


def _final(state: State, node: int) -> bool:
    return node in state.results or node in state.failures


def _check_complete(definition: Definition, closure: _Closure) -> None:
    """Complete the workflow once every task is done, and every callback its outcome
    calls for too.

    Which callbacks must finish is derived from the tasks' outcomes, never from the
    absence of an enqueue (a stale fold may not have seen it yet).
    """
    state = closure.state
    done = len(state.results) + len(state.failures) + len(closure.successes)
    if done < definition.task_count:
        return  # cheap necessary condition; the exact check below is linear
    for node in definition.nodes:
        if not isinstance(node, TaskNode) or node.role != TASK:
            continue
        if closure.succeeded(node.id):
            if node.on_success != NONE and not _final(state, node.on_success):
                return
        elif node.id in state.failures and node.allow_failure:
            if node.on_failure != NONE and not _final(state, node.on_failure):
                return
            exhausted = node.on_retry_exhausted
            if exhausted != NONE and node.id in state.exhausted and not _final(state, exhausted):
                return
        else:
            return  # not done, or failed for good: its own projection fails the workflow
    closure.ensure(WorkflowCompleted(cause=closure.cause))


def _check_barrier(definition: Definition, closure: _Closure, barrier: int) -> None:
    node = definition.barrier(barrier)
    recorded = closure.state.decremented.get(barrier, set())
    # Sources decremented in this very closure count too (the fold has not seen them).
    pending = {
        e.source
        for e in closure.events
        if isinstance(e, BarrierDecremented) and e.barrier == barrier
    }
    if len(recorded) + len(pending) < len(node.sources):
        return  # cheap: most decrements stop here
    if not recorded.issuperset(s for s in node.sources if s not in pending):
        return  # set-based: the recorded sources must cover the barrier's sources
    closure.ensure(BarrierReleased(barrier=barrier, cause=closure.cause))
    for target in node.targets:
        _enqueue(definition, closure, target, 1, definition.task(target).delay_ms)


def _retry(definition: Definition, closure: _Closure, event: TaskFailed) -> bool:
    """Enqueue the next attempt if the failure asks for one within policy."""
    task = definition.task(event.node)
    retries = event.attempt - closure.state.retry_base.get(event.node, 0)  # this one too
    within_policy = event.later or retries <= task.options.max_retries
    if event.retry_delay_ms is not None and within_policy:
        _enqueue(definition, closure, event.node, event.attempt + 1, event.retry_delay_ms)
        return True
    return False


def _failed(definition: Definition, closure: _Closure, event: TaskFailed) -> None:
    state = closure.state
    resumed = event.retry_delay_ms is None and event.node not in state.failures
    if resumed or state.attempt.get(event.node, event.attempt) > event.attempt:
        return  # superseded (its retry, or a resume, runs the node again): decided already
    if _retry(definition, closure, event):
        return
    task = definition.task(event.node)
    if task.role != TASK:
        _check_complete(definition, closure)  # a callback's failure is only recorded
        return
    if task.on_failure != NONE:
        _enqueue(definition, closure, task.on_failure, 1, 0)
    if task.on_retry_exhausted != NONE and event.exhausted:
        _enqueue(definition, closure, task.on_retry_exhausted, 1, 0)
    if task.allow_failure:
        _done(definition, closure, event.node)
        return
    error = {**event.error, "node": event.node, "attempt": event.attempt, "actor": task.actor}
    closure.ensure(WorkflowFailed(error=error, cause=closure.cause))
    if definition.on_failure != NONE:
        _enqueue(definition, closure, definition.on_failure, 1, 0)


def finished(definition: Definition, state: State, decisions: Iterable[Event] = ()) -> bool:
    """Whether the workflow has ended and no callback may still run, once ``decisions``
    (not yet folded) are in the log: then it can be archived."""
    terminal = state.terminal
    pending: set[int] = set()
    for event in decisions:
        if isinstance(event, TERMINAL):
            terminal = True
        elif isinstance(event, TaskEnqueued) and definition.task(event.node).finalizer:
            # A task of the canvas enqueued in the closure that ends the workflow never
            # runs (its start finds the workflow ended): only callbacks hold an archive.
            pending.add(event.node)
    if not terminal or pending:
        return False
    return all(_final(state, node) for node in definition.callbacks if node in state.attempt)
