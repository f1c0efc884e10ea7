"""The test actors, strategies and contract checks of the property-based tests (no Redis).

The simulator of the shell over the pure core (scripts, workers, projectors: deliveries,
duplicated and redelivered messages, workers that die before or after recording an
outcome, recovery projections, stale projectors), the canvas strategies and ``evaluate``,
the reference model of a canvas's results, are ``streamflow.testing``'s, here bound to the
fixed test actors F, H, FLAKY and FRAGILE. ``Checker`` verifies contract items 1 and 2
(DESIGN §1) entry by entry.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from streamflow import testing
from streamflow.api.actors import Actor
from streamflow.api.canvas import Canvas, Chain, Group, Message, WithDelay
from streamflow.api.children import Child
from streamflow.api.compile import Compiled, compile_canvas
from streamflow.api.signals import Signal
from streamflow.model import codec
from streamflow.model.definition import NONE, Definition, TaskNode
from streamflow.model.events import (
    TERMINAL,
    BarrierDecremented,
    BarrierReleased,
    Entry,
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
from streamflow.model.fork import kept_of
from streamflow.model.options import ActorOptions
from streamflow.testing import NOTHING, task_ids
from streamflow.testing import Evaluation as Expected
from streamflow.testing.records import Job, QueueMessage
from streamflow.testing.simulator import DECIDABLE
from streamflow.testing.strategies import canvases as user_canvases

__all__ = [
    "ACTORS",
    "DECIDABLE",
    "FLAKY",
    "FRAGILE",
    "NOTHING",
    "Case",
    "Checker",
    "Expected",
    "F",
    "H",
    "Job",
    "QueueMessage",
    "Simulator",
    "canvases",
    "cases",
    "child_canvases",
    "child_cases",
    "evaluate",
    "messages",
    "rebuild",
    "task_ids",
]

# -- actors ----------------------------------------------------------------------------


def _kwargs_part(kwargs: dict[str, Any]) -> list[Any]:
    return [[[k, v] for k, v in sorted(kwargs.items())]] if kwargs else []


def _f(*args: Any, **kwargs: Any) -> Any:
    return ["f", *args, *_kwargs_part(kwargs)]


def _h(*args: Any, **kwargs: Any) -> Any:
    # A compact digest of its input: keeps results small when groups pile up.
    digest = hashlib.blake2b(codec.pack([list(args), kwargs]), digest_size=4).hexdigest()
    return ["h", digest]


def _flaky(*args: Any, **kwargs: Any) -> Any:
    return ["flaky", *args, *_kwargs_part(kwargs)]


def _fragile(*args: Any, **kwargs: Any) -> Any:
    return ["fragile", *args, *_kwargs_part(kwargs)]


F = Actor(_f, name="f", options=ActorOptions())
H = Actor(_h, name="h", options=ActorOptions(queue="other", time_limit_ms=5000))
FLAKY = Actor(_flaky, name="flaky", options=ActorOptions(max_retries=2, min_backoff_ms=10))
FRAGILE = Actor(_fragile, name="fragile", options=ActorOptions(max_retries=0))
ACTORS: dict[str, Actor[..., Any]] = {a.name: a for a in (F, H, FLAKY, FRAGILE)}
"""The simulated worker's registry."""

# -- strategies ------------------------------------------------------------------------


_ACTOR = st.sampled_from([F, F, H, FLAKY, FRAGILE])
_ARGS = st.lists(st.integers(0, 3), max_size=2)
_KWARGS = st.dictionaries(st.just("k"), st.integers(0, 3), max_size=1)
_DELAY = st.sampled_from([None, None, 0.001, 2])


@st.composite
def messages(draw: st.DrawFn) -> Message:
    """A message of one of the test actors, with small int arguments."""
    return draw(_ACTOR).message_with_options(
        args=draw(_ARGS),
        kwargs=draw(_KWARGS),
        pipe_ignore=draw(st.booleans()),
        delay=draw(_DELAY),
    )


_MESSAGES = messages()


def canvases(
    max_depth: int = 5, max_width: int = 50, max_tasks: int = 60, max_items: int = 120
) -> st.SearchStrategy[Canvas]:
    """Random canvases of the test actors (``streamflow.testing.canvases``).

    At most ``max_depth`` levels of nesting, ``max_width`` members per chain or group,
    ``max_tasks`` messages and ``max_items`` canvas objects in all.
    """
    return user_canvases(
        messages=_MESSAGES,
        max_depth=max_depth,
        max_width=max_width,
        max_tasks=max_tasks,
        max_items=max_items,
    )


@dataclasses.dataclass(frozen=True)
class Case:
    """A canvas, its compiled form, and which attempts of which nodes fail."""

    canvas: Canvas
    compiled: Compiled
    fail_until: dict[int, int]
    """Task node -> attempts 1..k of it fail (k > max_retries: it fails for good)."""

    @property
    def definition(self) -> Definition:
        return self.compiled.definition

    @property
    def fails_for_good(self) -> bool:
        d = self.definition
        return any(k > d.task(n).options.max_retries for n, k in self.fail_until.items())


@st.composite
def cases(draw: st.DrawFn, **canvas_bounds: int) -> Case:
    canvas = draw(canvases(**canvas_bounds))
    compiled = compile_canvas(canvas)
    final_failures = draw(st.booleans())
    fail_until: dict[int, int] = {}
    for node in compiled.definition.nodes:
        if isinstance(node, TaskNode) and node.actor in ("flaky", "fragile"):
            limit = node.options.max_retries + (1 if final_failures else 0)
            fail_until[node.id] = draw(st.integers(0, limit))
    return Case(canvas=canvas, compiled=compiled, fail_until=fail_until)


def child_canvases(
    max_depth: int = 3, max_width: int = 4, max_tasks: int = 8, max_items: int = 12
) -> st.SearchStrategy[Canvas]:
    """Canvases of the test actors with ``Child`` nodes (0 or 1 retry), whose canvases
    may hold ``Child`` nodes of their own (one level more)."""

    def canvases_of(messages: st.SearchStrategy[Any], tasks: int) -> st.SearchStrategy[Canvas]:
        return user_canvases(
            messages=messages,
            max_depth=max_depth,
            max_width=max_width,
            max_tasks=tasks,
            max_items=max_items,
        )

    def children(inner: st.SearchStrategy[Canvas]) -> st.SearchStrategy[Message]:
        return st.builds(lambda c, r: Child(c, max_retries=r), inner, st.integers(0, 1))

    leaves = children(canvases_of(_MESSAGES, max(1, max_tasks // 2)))
    inner = children(canvases_of(st.one_of(_MESSAGES, leaves), max(1, max_tasks // 2)))
    return canvases_of(st.one_of(_MESSAGES, _MESSAGES, inner), max_tasks)


def _recovering(draw: st.DrawFn, canvas: Canvas) -> Case:
    """A case whose flaky and fragile tasks fail, each within its retries."""
    compiled = compile_canvas(canvas)
    fail_until = {
        node.id: draw(st.integers(0, node.options.max_retries))
        for node in compiled.definition.nodes
        if isinstance(node, TaskNode) and node.actor in ("flaky", "fragile")
    }
    return Case(canvas=canvas, compiled=compiled, fail_until=fail_until)


@st.composite
def child_cases(draw: st.DrawFn, **canvas_bounds: int) -> Case:
    """Cases with ``Child`` nodes; the parent's own flaky and fragile tasks may fail."""
    canvas = draw(child_canvases(**canvas_bounds))
    return _recovering(draw, canvas)


SIGNALS = ("s0", "s1", "s2")
"""The names signal nodes wait for (several nodes may wait for one)."""


def payload_of(name: str) -> Any:
    """What signal ``name`` carries in these tests."""
    return {"signal": name, "n": SIGNALS.index(name)}


SIGNAL_ACTORS: dict[str, Actor[..., Any]] = {
    f"@signal:{name}": Actor(
        lambda name=name: payload_of(name), name=f"@signal:{name}", options=ActorOptions()
    )
    for name in SIGNALS
}
"""For the reference model only: a signal node's value is its signal's payload."""


@st.composite
def signal_cases(
    draw: st.DrawFn,
    max_depth: int = 5,
    max_width: int = 8,
    max_tasks: int = 20,
    max_items: int = 40,
) -> Case:
    """Cases whose canvases mix the test actors' messages with ``Signal`` nodes (no
    timeout: the reference model knows each node's value, the payload)."""
    signals = st.sampled_from(SIGNALS).map(Signal)
    canvas = draw(
        user_canvases(
            messages=st.one_of(_MESSAGES, signals),
            max_depth=max_depth,
            max_width=max_width,
            max_tasks=max_tasks,
            max_items=max_items,
        )
    )
    return _recovering(draw, canvas)


# -- the reference model ---------------------------------------------------------------


def evaluate(canvas: Canvas) -> Expected:
    """Evaluate ``canvas`` directly, the way its semantics say (DESIGN §4)."""
    return testing.evaluate(canvas, actors={**ACTORS, **SIGNAL_ACTORS})


def rebuild(canvas: Canvas) -> Canvas:
    """A structurally equal copy made of new objects."""
    if isinstance(canvas, Message):
        return dataclasses.replace(canvas, args=tuple(canvas.args), kwargs=dict(canvas.kwargs))
    if isinstance(canvas, WithDelay):
        copy = WithDelay(rebuild(canvas.child), 0)
        copy.delay_ms = canvas.delay_ms
        return copy
    if isinstance(canvas, Group):
        return Group(*(rebuild(c) for c in canvas.children))
    return Chain(*(rebuild(s) for s in canvas.steps))


# -- the contract, checked entry by entry ----------------------------------------------


class Checker:
    """Checks each new log entry against the contract and the reference model."""

    def __init__(self, case: Case, expected: Expected) -> None:
        self.definition = case.definition
        self.expected_value = dict(zip(task_ids(self.definition), expected.values, strict=True))
        self.entries: list[Entry] = []
        self.succeeded: dict[int, int] = {}
        """Task -> seq of its TaskSucceeded."""
        self.final_failures: list[int] = []
        self.outcomes: set[tuple[int, int]] = set()
        self.retry_delay: dict[tuple[int, int], int] = {}
        """(node, attempt) -> retry delay of its failure."""
        self.enqueued: dict[int, int] = {}
        """Task -> latest enqueued attempt."""
        self.started: set[tuple[int, int]] = set()
        self.decremented: dict[int, set[int]] = collections.defaultdict(set)
        self.released: set[int] = set()
        self.signals: set[str] = set()
        """Signals received so far."""
        self.resumed: set[tuple[int, int]] = set()
        """(node, attempt) a resume re-runs."""
        self.base: dict[int, int] = {}
        """Task -> attempts it had before the last resume."""
        self.kept: set[int] = set()
        """Tasks whose results a fork keeps (decided, never run)."""
        self.ended = False

    def feed(self, entries: Sequence[Entry]) -> None:
        for entry in entries[len(self.entries) :]:
            self._check(entry)
            self.entries.append(entry)

    def _check(self, entry: Entry) -> None:
        d = self.definition
        seq, event = entry.seq, entry.event
        where = f"seq {seq} {event!r}"
        assert seq == len(self.entries) + 1, f"sequence numbers not dense at {where}"
        if self.entries:
            assert _id_key(entry.stream_id) > _id_key(self.entries[-1].stream_id), where
        assert not self.ended or isinstance(event, WorkflowResumed), f"{where} after the end"
        assert event.cause < seq, f"{where}: its cause is not earlier"
        assert isinstance(event, WorkflowSubmitted) == (seq == 1), where
        if isinstance(event, WorkflowSubmitted):
            self.kept = set(kept_of(event.options))
        if isinstance(event, TaskEnqueued):
            node, attempt = event.node, event.attempt
            assert self.enqueued.get(node, 0) < attempt, f"second or backward enqueue: {where}"
            task = d.task(node)
            if attempt == 1:
                assert task.pred == NONE or task.pred in self.released, f"not ready: {where}"
                assert event.delay_ms == task.delay_ms, where
            elif (node, attempt) in self.resumed:
                assert self.enqueued.get(node) == attempt - 1, where
            else:
                assert self.enqueued.get(node) == attempt - 1, where
                retry = self.retry_delay.get((node, attempt - 1))
                assert retry is not None, f"retry without a retryable failure: {where}"
                assert attempt - 1 - self.base.get(node, 0) <= task.options.max_retries, where
                assert event.delay_ms == retry, f"{where}: the failure asked for {retry}"
            self.enqueued[node] = attempt
        elif isinstance(event, TaskStarted):
            node, attempt = event.node, event.attempt
            assert self.enqueued.get(node) == attempt, f"start of a stale attempt: {where}"
            assert (node, attempt) not in self.outcomes, f"start after the outcome: {where}"
            task = d.task(node)
            if task.pred != NONE:
                for source in d.barrier(task.pred).sources:
                    assert source in self.succeeded, (
                        f"contract 1: node {node} started at seq {seq} before its "
                        f"predecessor {source} succeeded"
                    )
            for leaf in d.pipe_leaves(node):
                assert leaf in self.succeeded, f"piped result of {leaf} missing: {where}"
            self.started.add((node, attempt))
        elif isinstance(event, WorkflowResumed):
            assert self.ended and self.final_failures, f"resumed, not failed: {where}"
            for node, attempt in event.nodes.items():
                assert node not in self.succeeded, f"a success resumed: {where}"
                assert attempt == self.enqueued.get(node, 0) + 1, where
                self.resumed.add((node, attempt))
                self.base[node] = attempt - 1
                if node in self.final_failures:
                    self.final_failures.remove(node)
            self.ended = False
        elif isinstance(event, SignalReceived):
            assert event.name not in self.signals, f"a signal received twice: {where}"
            self.signals.add(event.name)
        elif isinstance(event, (TaskSucceeded, TaskFailed)):
            node, attempt = event.node, event.attempt
            name = d.task(node).signal
            if node in self.kept:  # decided, never run: the result the fork keeps
                assert isinstance(event, TaskSucceeded) and attempt == 1, where
                assert (node, attempt) not in self.started, f"a kept task ran: {where}"
                self.started.add((node, attempt))
            elif name is None:
                assert (node, attempt) in self.started, f"outcome without a start: {where}"
            else:  # decided, never run: its signal's payload, once the signal came
                assert isinstance(event, TaskSucceeded), f"no timeout here: {where}"
                assert name in self.signals, f"taken before its signal came: {where}"
                self.started.add((node, attempt))
            assert (node, attempt) not in self.outcomes, f"second outcome: {where}"
            assert self.enqueued.get(node) == attempt, f"outcome of a stale attempt: {where}"
            self.outcomes.add((node, attempt))
            if isinstance(event, TaskSucceeded):
                assert event.result == self.expected_value[node], (
                    f"node {node}: result {event.result!r} != {self.expected_value[node]!r}"
                )
                self.succeeded[node] = seq
            elif event.retry_delay_ms is None:
                self.final_failures.append(node)
            else:
                self.retry_delay[(node, attempt)] = event.retry_delay_ms
        elif isinstance(event, BarrierDecremented):
            barrier = d.barrier(event.barrier)
            assert event.source in barrier.sources, where
            assert event.source in self.succeeded, f"decrement before the success: {where}"
            assert event.source not in self.decremented[event.barrier], f"twice: {where}"
            self.decremented[event.barrier].add(event.source)
        elif isinstance(event, BarrierReleased):
            barrier = d.barrier(event.barrier)
            assert event.barrier not in self.released, f"contract 2: released twice: {where}"
            assert self.decremented[event.barrier] == set(barrier.sources), (
                f"released before every source was decremented: {where}"
            )
            self.released.add(event.barrier)
        elif isinstance(event, WorkflowCompleted):
            assert len(self.succeeded) == d.task_count, f"completed too early: {where}"
            self.ended = True
        elif isinstance(event, WorkflowFailed):
            assert self.final_failures, f"failed without a final task failure: {where}"
            assert event.error["node"] in self.final_failures, where
            self.ended = True
        elif isinstance(event, TERMINAL):
            raise AssertionError(f"nobody cancels here: {where}")


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, n = stream_id.split("-")
    return int(ms), int(n)


# -- the shell, simulated --------------------------------------------------------------


class Simulator(testing.Simulator):
    """``streamflow.testing.Simulator`` running a ``Case``: the test actors, and the
    case's failures as its outcome plan."""

    def __init__(self, case: Case) -> None:
        super().__init__(case.compiled, actors=ACTORS, fail_until=case.fail_until)
        self.case = case
