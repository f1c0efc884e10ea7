"""A model of the streamflow shell over the pure core, for property-based tests (no Redis).

``Simulator`` plays the Lua scripts (submit, start, outcome, apply) on an in-memory log,
with their rules, and the worker and projector around them: deliveries, duplicated and
redelivered messages, workers that die before or after recording an outcome, recovery
projections, and stale projectors. ``Checker`` verifies contract items 1 and 2 (DESIGN
§1) entry by entry, and ``evaluate`` is the reference model of a canvas's results: a
direct recursive evaluation in Python.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from streamflow import codec
from streamflow.actors import Actor, ActorOptions, Message
from streamflow.canvas import Canvas, Chain, Compiled, Group, WithDelay, compile_canvas, has_tasks
from streamflow.core import RUNNING, State, decide, decide_all, fold, fold_all
from streamflow.definition import NONE, Definition, TaskNode, assemble
from streamflow.events import (
    TERMINAL,
    BarrierDecremented,
    BarrierReleased,
    Entry,
    Event,
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowSubmitted,
    decode_event,
    encode_event,
    encode_with_cause_hole,
)

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
_WITH_DELAY = st.sampled_from([0, 0.001, 1.5])


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
_TOP_KINDS = st.sampled_from(["chain", "group", "chain", "group", "delay", "message"])
_INNER_KINDS = st.sampled_from(["message", "message", "chain", "group", "delay", "message"])
_LEAF_KINDS = st.just("message")


@st.composite
def canvases(
    draw: st.DrawFn,
    max_depth: int = 4,
    max_width: int = 20,
    max_tasks: int = 60,
    max_items: int = 120,
) -> Canvas:
    """Random canvases: Chain, Group (empty ones too), WithDelay, messages, nested.

    At most ``max_depth`` levels of nesting, ``max_width`` members per chain or group,
    ``max_tasks`` messages and ``max_items`` canvas objects in all.
    """
    tasks = [max_tasks]
    items = [max_items]

    def build(depth: int) -> Canvas:
        items[0] -= 1
        if depth >= max_depth or items[0] <= 0:
            kinds = _LEAF_KINDS
        else:
            # Mostly a chain or group at the top (a lone message is a dull workflow).
            kinds = _TOP_KINDS if depth == 0 else _INNER_KINDS
        kind = draw(kinds)
        if kind == "message":
            if tasks[0] <= 0:
                return Group()
            tasks[0] -= 1
            return draw(_MESSAGES)
        if kind == "delay":
            return WithDelay(build(depth + 1), draw(_WITH_DELAY))
        low = 1 if kind == "chain" else 0
        high = max(low, min(max_width, items[0]))
        if depth == 0:
            width = draw(st.integers(max(low, 2), max(high, 2)))
        else:
            # Mostly narrow, sometimes wide; empty groups now and then.
            width = draw(st.one_of(st.integers(1, max(1, min(high, 4))), st.integers(low, high)))
        members = [build(depth + 1) for _ in range(width)]
        return Chain(*members) if kind == "chain" else Group(*members)

    return build(0)


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


# -- the reference model ---------------------------------------------------------------

NOTHING: Any = object()
"""Nothing piped (the first step of the workflow)."""


@dataclasses.dataclass
class Expected:
    """What direct evaluation says, per message in canvas order and for the whole canvas."""

    value: Any
    messages: list[Message]
    inputs: list[Any]
    """Piped input of each message (NOTHING if none)."""
    values: list[Any]
    delays_ms: list[int]
    """Delay of each message's first attempt once it is ready."""


def evaluate(canvas: Canvas) -> Expected:
    """Evaluate ``canvas`` directly, the way its semantics say (DESIGN §4)."""
    out = Expected(value=None, messages=[], inputs=[], values=[], delays_ms=[])
    out.value = _evaluate(canvas, NOTHING, 0, out)
    return out


def _evaluate(canvas: Canvas, piped: Any, delay_ms: int, out: Expected) -> Any:
    if isinstance(canvas, Message):
        args = list(canvas.args)
        if piped is not NOTHING and not canvas.pipe_ignore:
            args.append(piped)
        value = ACTORS[canvas.actor_name].fn(*args, **canvas.kwargs)
        out.messages.append(canvas)
        out.inputs.append(NOTHING if canvas.pipe_ignore else piped)
        out.values.append(value)
        out.delays_ms.append(delay_ms + canvas.delay_ms)
        return value
    if isinstance(canvas, WithDelay):
        return _evaluate(canvas.child, piped, delay_ms + canvas.delay_ms, out)
    if isinstance(canvas, Group):
        return [_evaluate(child, piped, delay_ms, out) for child in canvas.children]
    value = piped
    for step in canvas.steps:
        value = _evaluate(step, value, delay_ms, out)
        if has_tasks(step):
            delay_ms = 0  # a chain's delay holds back its first step with tasks only
    return value


def task_ids(definition: Definition) -> list[int]:
    """Task node ids in canvas order."""
    return [n.id for n in definition.nodes if isinstance(n, TaskNode)]


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
        assert not self.ended, f"{where} after the terminal event"
        assert event.cause < seq, f"{where}: its cause is not earlier"
        assert isinstance(event, WorkflowSubmitted) == (seq == 1), where
        if isinstance(event, TaskEnqueued):
            node, attempt = event.node, event.attempt
            assert self.enqueued.get(node, 0) < attempt, f"second or backward enqueue: {where}"
            task = d.task(node)
            if attempt == 1:
                assert task.pred == NONE or task.pred in self.released, f"not ready: {where}"
                assert event.delay_ms == task.delay_ms, where
            else:
                assert self.enqueued.get(node) == attempt - 1, where
                retry = self.retry_delay.get((node, attempt - 1))
                assert retry is not None, f"retry without a retryable failure: {where}"
                assert attempt - 1 <= task.options.max_retries, where
                assert event.delay_ms == retry, where
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
        elif isinstance(event, (TaskSucceeded, TaskFailed)):
            node, attempt = event.node, event.attempt
            assert (node, attempt) in self.started, f"outcome without a start: {where}"
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


@dataclasses.dataclass(frozen=True)
class QueueMessage:
    msg_id: str
    node: int
    attempt: int


@dataclasses.dataclass(frozen=True, eq=False)
class Job:
    """A delivery that a worker is running: the outcome it will record."""

    message: QueueMessage
    outcome: TaskSucceeded | TaskFailed


DECIDABLE = (
    WorkflowSubmitted,
    TaskSucceeded,
    TaskFailed,
    BarrierDecremented,
    BarrierReleased,
)
"""Events that ``decide`` reacts to: the causes a projector may be handed."""


class Simulator:
    """The log, the index, the queues and the workers of one workflow, in memory.

    Every script is one call that appends entries atomically, with the rules of its Lua
    counterpart; the index the scripts consult is ``self.idx``, the fold of the whole
    log kept incrementally (DESIGN §1.5: the index is derived).
    """

    def __init__(self, case: Case) -> None:
        self.case = case
        self.definition = case.definition
        self.log: list[Entry] = []
        self.idx = State()
        self.queue: list[QueueMessage] = []
        """Messages not yet acknowledged (delivered or not: any may be redelivered)."""
        self.jobs: list[Job] = []
        self.wakeups = 0
        """Recovery wake-ups scheduled by outcomes whose projection did not follow."""
        self.stats: collections.Counter[str] = collections.Counter()
        self._ms = 1_700_000_000_000
        self._msgs = 0

    # -- scripts ---------------------------------------------------------------------

    def _script(self, events: Sequence[Event | bytes]) -> list[Entry]:
        """Append ``events`` (or encoded ones) in one script call (one clock reading, ids
        ``<ms>-<i>``), as stored: what a reader decodes is what the log holds."""
        self._ms += 1
        out = []
        for i, item in enumerate(events):
            event = decode_event(item if isinstance(item, bytes) else encode_event(item))
            entry = Entry(seq=len(self.log) + 1, stream_id=f"{self._ms}-{i}", event=event)
            self.log.append(entry)
            fold(self.idx, entry)
            out.append(entry)
        return out

    def _new_message(self, node: int, attempt: int) -> None:
        self._msgs += 1
        self.queue.append(QueueMessage(f"{self._ms}-{self._msgs}", node, attempt))

    def _ack(self, message: QueueMessage) -> None:
        # XACK + XDEL of this one message id (a duplicate has its own id).
        self.queue = [m for m in self.queue if m.msg_id != message.msg_id]

    def submit(self) -> list[Entry]:
        """submit.lua: WorkflowSubmitted and the roots' enqueues, decided by ``decide``."""
        submitted = WorkflowSubmitted(
            def_hash=self.definition.hash,
            args=self.case.compiled.args,
            options={},
            engine_version="sim",
        )
        first = Entry(seq=1, stream_id="0-0", event=submitted)
        decisions = decide(self.definition, fold_all([first]), first)
        entries = self._script([submitted])
        return entries + self.apply(decisions, expected=0)[1]

    def apply(
        self, decisions: Sequence[Event], *, expected: int, check_conflict: bool = True
    ) -> tuple[str, list[Entry]]:
        """apply.lua: refuse when terminal, CONFLICT on a newer decision, else append each
        decision whose idempotency key is not in the index, and queue its message."""
        if self.idx.terminal:
            return "TERMINAL", []
        if check_conflict and self.idx.last_decision > expected:
            return "CONFLICT", []
        fresh: list[Event] = []
        keys: set[str] = set()
        for event in decisions:
            key = event.idempotency_key()
            assert key is not None, f"{event!r} is not a decision"
            if key not in self.idx.keys and key not in keys:
                keys.add(key)
                fresh.append(event)
        entries = self._script(fresh)
        for entry in entries:
            if isinstance(entry.event, TaskEnqueued):
                self._new_message(entry.event.node, entry.event.attempt)
        self.stats["decisions"] += len(entries)
        return "OK", entries

    def deliver(self, pick: int) -> Job | None:
        """A worker reads message ``pick`` (first delivery or redelivery): start.lua, then
        for RUN the task body runs and its outcome is kept in the returned job."""
        message = self.queue[pick % len(self.queue)]
        node, attempt = message.node, message.attempt
        idx = self.idx
        if idx.status != RUNNING or idx.attempt.get(node) != attempt:
            self.stats["stale"] += 1
            self._ack(message)
            return None
        if f"out:{node}:{attempt}" in idx.keys:
            self.stats["already_done"] += 1
            self.project_all()
            self._ack(message)
            return None
        owner = idx.owner.get(node)
        if owner is not None and owner != message.msg_id:
            self.stats["dup"] += 1
            self._ack(message)
            return None
        self.stats["run"] += 1
        started = TaskStarted(node=node, attempt=attempt, worker="sim", msg_id=message.msg_id)
        start_seq = self._script([started])[0].seq
        job = Job(message, self._run(node, attempt, start_seq))
        self.jobs.append(job)
        return job

    def _run(self, node: int, attempt: int, start_seq: int) -> TaskSucceeded | TaskFailed:
        """What the worker does with a RUN: arguments, piped input, body, outcome event."""
        task = self.definition.task(node)
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        blob = self.idx.args.get(node)
        if blob:
            args, kwargs = codec.decode(blob)
        if task.pipe != NONE:
            leaves = self.definition.pipe_leaves(node)
            values = {leaf: self.idx.results[leaf] for leaf in leaves}
            args = [*args, assemble(self.definition.specs[task.pipe], values)]
        if attempt <= self.case.fail_until.get(node, 0):
            options = task.options
            retry_delay_ms = None
            if attempt <= options.max_retries:
                retry_delay_ms = min(
                    options.max_backoff_ms, options.min_backoff_ms * 2 ** (attempt - 1)
                )
            error = {"type": "Boom", "message": f"attempt {attempt}", "traceback": ""}
            return TaskFailed(
                node=node,
                attempt=attempt,
                error=error,
                retry_delay_ms=retry_delay_ms,
                cause=start_seq,
            )
        result = ACTORS[task.actor].fn(*args, **kwargs)
        return TaskSucceeded(node=node, attempt=attempt, result=result, cause=start_seq)

    def finish(self, job: Job, *, project: bool = True) -> list[Entry]:
        """The worker records the job's outcome (outcome.lua) and, unless it dies right
        after (``project=False``), projects it inline and acknowledges the message."""
        self.jobs.remove(job)
        event = job.outcome
        node, attempt = event.node, event.attempt
        idx = self.idx
        out_key = f"out:{node}:{attempt}"
        if idx.status != RUNNING or idx.attempt.get(node) != attempt or out_key in idx.keys:
            self.stats["outcome_stale"] += 1
            self._ack(job.message)
            return []
        batch: list[Event | bytes] = [event]
        succ = self.definition.task(node).succ
        if isinstance(event, TaskSucceeded) and succ != NONE:
            decrement = BarrierDecremented(barrier=succ, source=node)
            if decrement.idempotency_key() not in idx.keys:
                # As the worker and outcome.lua build it: the cause is the outcome's
                # sequence number, spliced in by the script.
                head, tail = encode_with_cause_hole(decrement)
                batch.append(head + codec.pack(len(self.log) + 1) + tail)
        entries = self._script(batch)
        if not project:
            self.stats["crash_after_outcome"] += 1
            self.wakeups += 1
            return entries
        return entries + self.project(entries[0], job.message)

    def lose(self, job: Job) -> None:
        """The worker dies mid-task: no outcome; the message waits for redelivery."""
        self.stats["crash_mid_task"] += 1
        self.jobs.remove(job)

    def project(self, cause: Entry, trigger: QueueMessage | None = None) -> list[Entry]:
        """Inline projection: a fresh fold, decide, apply (again on CONFLICT), ack."""
        out: list[Entry] = []
        for _ in range(10):
            state = self.idx  # caught up (decide only reads it)
            reply, entries = self.apply(
                decide(self.definition, state, cause), expected=state.last_decision
            )
            out += entries
            if reply != "CONFLICT":
                break
        else:
            raise AssertionError("projection did not settle")
        if trigger is not None:
            self._ack(trigger)
        return out

    def recover(self) -> list[Entry]:
        """A recovery projector handles a wake-up (or a sweep finds the workflow)."""
        self.stats["recoveries"] += 1
        self.wakeups = max(0, self.wakeups - 1)
        return self.project_all()

    def project_all(self) -> list[Entry]:
        """Projection without a cause: ``decide_all`` over the whole log."""
        state = self.idx  # caught up (decide_all only reads it)
        _, entries = self.apply(
            decide_all(self.definition, state, self.log), expected=state.last_decision
        )
        return entries

    def project_stale(self, cause: Entry, lag: int, *, check_conflict: bool) -> list[Entry]:
        """A projector whose fold stops ``lag`` entries short of the log (but includes
        ``cause``); ``check_conflict=False`` takes the apply script's serialisation away,
        leaving idempotency keys and the terminal check: the core alone must be right."""
        self.stats["stale_projections"] += 1
        upto = max(cause.seq, len(self.log) - lag)
        state = fold_all(self.log[:upto])
        decisions = decide(self.definition, state, cause)
        reply, entries = self.apply(
            decisions, expected=state.last_decision, check_conflict=check_conflict
        )
        if reply == "CONFLICT":
            self.stats["conflicts"] += 1
        return entries

    def duplicate(self, pick: int) -> None:
        """The queue holds a message twice (at-least-once delivery): a new id."""
        self.stats["duplicates"] += 1
        message = self.queue[pick % len(self.queue)]
        self._new_message(message.node, message.attempt)

    def drain(self, max_rounds: int = 1000) -> None:
        """Run everything left, without further faults, until nothing is pending."""
        for _ in range(max_rounds):
            if not (self.jobs or self.queue or self.wakeups):
                return
            for job in list(self.jobs):
                self.finish(job)
            while self.wakeups:
                self.recover()
            for message in list(self.queue):
                if message in self.queue:
                    self.deliver(self.queue.index(message))
        raise AssertionError(f"not drained after {max_rounds} rounds: {self.queue}")
