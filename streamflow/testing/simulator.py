"""A deterministic, in-process simulator of streamflow over the pure core (no Redis).

``Simulator`` plays the Lua scripts (submit, start, outcome, apply) on an in-memory log
with their rules, and the workers and projectors around them, running the real actor
functions in process: deliveries in any order, duplicated messages, dropped deliveries
(the worker dies mid-task, the message is redelivered), crashes between an outcome and
its projection (a recovery projection follows), and stale projectors. ``run`` drives a
canvas to its end under faults chosen by a seed or by hypothesis's ``data``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

from streamflow.api.actors import Actor, callback_of
from streamflow.api.canvas import Canvas
from streamflow.api.compile import Compiled
from streamflow.api.compile import compile_canvas as _compile
from streamflow.model import codec, schema
from streamflow.model.decide import decide, decide_all
from streamflow.model.definition import (
    NONE,
    TASK,
    Definition,
    TaskNode,
    assemble,
    spec_leaves,
)
from streamflow.model.events import (
    BarrierDecremented,
    BarrierReleased,
    Entry,
    Event,
    SignalReceived,
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowSubmitted,
    decode_event,
    encode_event,
    encode_with_cause_hole,
)
from streamflow.model.index import sinks_done
from streamflow.model.quiet import is_quiet, quiet_check
from streamflow.model.schema import RUNNING
from streamflow.model.state import State, fold, fold_all
from streamflow.testing.actors import Actors, actor_registry
from streamflow.testing.bodies import Bodies
from streamflow.testing.children import ChildPlan, Children
from streamflow.testing.inputs import Inputs
from streamflow.testing.mishaps import Mishaps
from streamflow.testing.records import Job, QueueMessage, SimResult, remember

DECIDABLE = (
    WorkflowSubmitted,
    TaskSucceeded,
    TaskFailed,
    BarrierDecremented,
    BarrierReleased,
    SignalReceived,
)
"""Events ``decide`` reacts to: the causes a projector may be handed."""


class Simulator(Inputs, Children, Mishaps):
    """The log, the index, the queues and the workers of one workflow, in memory.

    Every script is one call that appends entries atomically, with the rules of its Lua
    counterpart; the index the scripts consult is ``self.idx``, the fold of the whole log
    kept incrementally (the index is derived, DESIGN §1.5). Drive it step by step
    (``deliver``, ``finish``, ``crash``, ``drop``, ``duplicate``, ``recover``,
    ``project_stale``, ``drain``) or let ``run`` do it.

    Args:
        canvas: what to run (or a canvas compiled already).
        actors: the actor functions to run, as actors or a name -> actor mapping; actors
            of an ``App`` are found through the canvas's messages.
        fail_until: outcome plan: task node id -> its attempts 1..k raise
            ``SimulatedFailure`` instead of running the body.
        on_failure: the workflow's on_failure actor (as ``App.submit`` takes it).
        child_plan: the outcome plan of each child workflow a ``Child`` node starts,
            from the node, its attempt and the child's definition (default: none fail).
    """

    def __init__(
        self,
        canvas: Canvas | Compiled,
        *,
        actors: Actors = (),
        fail_until: Mapping[int, int] | None = None,
        on_failure: Actor[..., Any] | None = None,
        child_plan: ChildPlan | None = None,
    ) -> None:
        if isinstance(canvas, Compiled):
            self.compiled = canvas
            self.actors = actor_registry(None, actors)
        else:
            self.compiled = _compile(canvas, on_failure=callback_of(on_failure, "on_failure"))
            self.actors = actor_registry(canvas, actors)
        if on_failure is not None:
            self.actors.setdefault(on_failure.name, on_failure)
        self.definition = self.compiled.definition
        tasks = [n for n in self.definition.nodes if isinstance(n, TaskNode)]
        missing = {n.actor for n in tasks if n.signal is None and not n.child}
        missing -= set(self.actors)
        if missing:
            raise ValueError(f"no actor function for {sorted(missing)} (pass them as actors=)")
        remember(self.definition)
        self.fail_until = dict(fail_until or {})
        self.bodies = Bodies(self.definition, self.actors, self.fail_until)
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
        self.workflow_id = "0-51"
        """The id child workflows' ids derive from (its tasks see ``WORKFLOW_ID``)."""
        self.options: dict[str, Any] = {}
        """The submission's options (a child's link to its parent)."""
        self.children = {}
        self.told = set()
        self.child_plan = child_plan

    # -- scripts ----------------------------------------------------------------------

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

    def _open(self, node: int) -> bool:
        """Whether the start and outcome scripts accept this node now."""
        finalizer = self.definition.task(node).finalizer
        return self.idx.status == RUNNING or (finalizer and self.idx.terminal)

    def submit(self) -> list[Entry]:
        """submit.lua: WorkflowSubmitted and the roots' enqueues, decided by ``decide``."""
        submitted = WorkflowSubmitted(
            def_hash=self.definition.hash,
            args=self.compiled.args,
            options=self.options,
            engine_version="sim",
        )
        first = Entry(seq=1, stream_id="0-0", event=submitted)
        decisions = decide(self.definition, fold_all([first]), first)
        entries = self._script([submitted])
        return entries + self.apply(decisions, expected=0)[1]

    def apply(
        self, decisions: Sequence[Event], *, expected: int, check_conflict: bool = True
    ) -> tuple[str, list[Entry]]:
        """apply.lua: once terminal only finalizer enqueues pass; CONFLICT on a newer
        decision; else append each decision whose idempotency key is not in the index, and
        queue its message."""
        if self.idx.terminal and not all(
            isinstance(e, TaskEnqueued) and self.definition.task(e.node).finalizer
            for e in decisions
        ):
            return "TERMINAL", []
        if check_conflict and self.idx.last_decision > expected:
            return "CONFLICT", []
        if any(isinstance(e, TaskSucceeded) and _key(e) in self.idx.keys for e in decisions):
            return "CONFLICT", []  # a decided outcome (a signal's) a worker's came before
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
            if isinstance(entry.event, TaskEnqueued) and self._messaged(entry.event, keys):
                self._new_message(entry.event.node, entry.event.attempt)
        self.stats["decisions"] += len(entries)
        return "OK", entries

    def _messaged(self, enqueued: TaskEnqueued, applied: set[str]) -> bool:
        """Whether an enqueue sends a message: not when its node succeeds in the same
        decisions (a signal taken at once, a result a fork keeps); a signal node's only
        with a timeout (its message fails it)."""
        task = self.definition.task(enqueued.node)
        taken = schema.outcome_key(enqueued.node, enqueued.attempt) in applied
        if task.signal is None:
            return not taken
        return task.options.time_limit_ms is not None and not taken

    def deliver(self, pick: int = 0) -> Job | None:
        """A worker reads queue message ``pick`` (modulo the queue's length; a first
        delivery or a redelivery): start.lua, then for RUN the task body runs and its
        outcome is kept in the returned job, to record with ``finish`` or ``crash``."""
        message = self.queue[pick % len(self.queue)]
        node, attempt = message.node, message.attempt
        idx = self.idx
        if not self._open(node) or idx.attempt.get(node) != attempt:
            self.stats["stale"] += 1
            self._ack(message)
            return None
        if schema.outcome_key(node, attempt) in idx.keys:
            self.stats["already_done"] += 1
            self.project_all()
            self._ack(message)
            return None
        owner = idx.owner.get(node)
        takeover = owner is not None and owner != message.msg_id
        if takeover and any(m.msg_id == owner for m in self.queue):
            self.stats["dup"] += 1
            self._ack(message)
            return None
        self.stats["run"] += 1
        started = TaskStarted(
            node=node, attempt=attempt, worker="sim", msg_id=message.msg_id, takeover=takeover
        )
        start_seq = self._script([started])[0].seq
        if self.definition.task(node).child:
            job = self._run_child(message, node, attempt, start_seq)
        else:
            job = Job(message, self.bodies.run(node, attempt, start_seq, self.idx, self.log))
        self.jobs.append(job)
        return job

    def value(self, node: int) -> Any:
        """A task's value: its result, a ``Failure`` if it failed for good, else None."""
        return self.bodies.value(node, self.idx)

    def finish(self, job: Job, *, project: bool = True) -> list[Entry]:
        """The worker records the job's outcome (outcome.lua, with the decrement its
        definition implies) and, unless the outcome is quiet or the worker dies right
        after (``project=False``, see ``crash``), projects it inline and acknowledges."""
        self.jobs.remove(job)
        event = job.outcome
        if event is None:  # parked: acknowledged, then (unless it died) it looks again
            self._ack(job.message)
            if project:
                self._look_again(job.message)
            return []
        node, attempt = event.node, event.attempt
        idx = self.idx
        if not self._open(node) or idx.attempt.get(node) != attempt:
            self.stats["outcome_stale"] += 1
            self._ack(job.message)
            return []
        task = self.definition.task(node)
        signalled = task.signal is not None and schema.signal_key(task.signal) in idx.keys
        if schema.outcome_key(node, attempt) in idx.keys or signalled:
            self.stats["outcome_stale"] += 1
            self._ack(job.message)
            return []
        ok = isinstance(event, TaskSucceeded)
        final = isinstance(event, TaskFailed) and event.retry_delay_ms is None
        done = ok or (final and task.allow_failure)
        check = quiet_check(self.definition, task, idx, ok=ok, done=done)
        batch: list[Event | bytes] = [event]
        counted = check.counter == schema.END_COUNT
        if done and task.succ != NONE:
            decrement = BarrierDecremented(barrier=task.succ, source=node)
            if decrement.idempotency_key() not in idx.keys:
                # As the worker and outcome.lua build it: the cause is the outcome's
                # sequence number, spliced in by the script.
                head, tail = encode_with_cause_hole(decrement)
                batch.append(head + codec.pack(len(self.log) + 1) + tail)
                counted = True
        entries = self._script(batch)
        if counted and is_quiet(check, self._count(check.counter), len(self.log)):
            self.stats["quiet"] += 1
            self._ack(job.message)
            return entries
        if not project:
            self.stats["crashes"] += 1
            self.wakeups += 1
            return entries
        return entries + self.project(entries[0], job.message)

    def _count(self, counter: int | str) -> int:
        """The index count outcome.lua keeps (``COUNT`` fields): a barrier's sources done,
        or the workflow's sinks done."""
        if counter == schema.END_COUNT:
            return sinks_done(self.definition, self.idx)
        assert isinstance(counter, int)
        return len(self.idx.decremented.get(counter, ()))

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

    def _new_child(self, compiled: Compiled, fail_until: Mapping[int, int]) -> Simulator:
        return Simulator(compiled, actors=self.actors, fail_until=fail_until)

    def drain(self, max_rounds: int = 1000) -> None:
        """Run everything left in the family (children too), without further faults,
        until nothing is pending."""
        for _ in range(max_rounds):
            family = [m for m in self.family() if isinstance(m, Simulator)]
            for parent, node, attempt in self.ended_untold():
                parent.tell(node, attempt)
            for sim in family:
                sim.sweep()
            if not any(s.jobs or s.queue or s.wakeups for s in family):
                return
            for sim in family:
                for job in list(sim.jobs):
                    sim.finish(job)
                while sim.wakeups:
                    sim.recover()
                for message in list(sim.queue):
                    if message in sim.queue:
                        sim.deliver(sim.queue.index(message))
        raise AssertionError(f"not drained after {max_rounds} rounds: {self.queue}")

    def result(self) -> SimResult:
        """How the workflow stands now."""
        d, state = self.definition, self.idx
        error = state.end.get("error")
        value = None
        if state.status == schema.COMPLETED:
            value = assemble(d.root_spec, {n: self.value(n) for n in spec_leaves(d.root_spec)})
        return SimResult(
            status=state.status,
            result=value,
            error=error,
            history=list(self.log),
            definition=d,
            stats=dict(self.stats),
        )


def _key(event: Event) -> str:
    key = event.idempotency_key()
    assert key is not None, f"{event!r} is not a decision"
    return key


def task_ids(definition: Definition) -> list[int]:
    """Task node ids in canvas order (the keys of ``fail_until``), callbacks excluded."""
    return [n.id for n in definition.nodes if isinstance(n, TaskNode) and n.role == TASK]
