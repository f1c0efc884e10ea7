"""Drives the real shell on a real Redis, one step at a time, for the stateful test.

``Cluster`` holds a few worker *processes* (each an ``App`` with its own connection,
projector cache and ``Worker``) on one Redis under one key prefix. Nothing runs in a
background thread: a step reads queue messages and hands them to the worker's own
``_dispatch`` (parse, start script + results script in one batch), and the worker's
thread pool is replaced by ``DeferredPool``, which only records what the worker submits
to it (``_run_sync``: body, outcome script, inline projection, ack; or ``_reproject``).
A later step runs one of those, so the test thread decides every interleaving.

Crashes: the crash points the code already has (``streamflow.faults``) exit the
process; here they raise ``Crash`` instead (``crash_points`` patches the modules that
call them), the step catches it and the whole process is replaced by a fresh one with
a new consumer name - its pending messages stay in the group's pending list, its cache
and in-flight jobs are gone, as after a SIGKILL.

Time: delayed tasks and retries sit in delayed sets until their due time. Rather than
wait, ``fast_forward`` moves them into their queues as the timer would once due (with a
stream id no earlier than the due time); a recovery wake-up (due after the recovery
grace) is moved the same way by ``wake``.

Determinism: whether a 1 ms delay or a retry's backoff has passed when its enqueue is
applied depends on the wall clock, and so does the order of a queue stream. So that a
failing example replays exactly, every delivery first fast-forwards, reads all new
messages under the consumer ``INBOX``, and then gives the worker the ones the rule
picks (XCLAIM), in an order by workflow, node and attempt; jobs are picked the same way.

The actor bodies run for real; whether an attempt fails is read from the case's plan
(``Case.fail_until``), as the simulator's ``Bodies.run`` decides it.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import redis

from proptests.redis_faults import Faults
from proptests.redis_process import QUEUES, Crash, Process, armed
from proptests.redis_records import QueueMessage, Tracked, child_canvas
from proptests.simulator import Case
from streamflow.api.compile import compile_canvas
from streamflow.api.handles import WorkflowHandle
from streamflow.model.events import Entry, WorkflowSubmitted, to_entry
from streamflow.model.messages import decode_task_message, decode_wake
from streamflow.model.schema import PROJECTOR_GROUP, WORKER_GROUP
from streamflow.runtime.sweep import StuckSweep
from streamflow.runtime.timer import move_due
from streamflow.runtime.worker import Worker
from streamflow.store.cluster import connect
from streamflow.store.keys import Keys
from streamflow.store.log import read_raw

SHARD = 0

# -- the cluster -----------------------------------------------------------------------

INBOX = "inbox"
"""The consumer new messages are read under until a worker takes one (XCLAIM)."""


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, n = stream_id.partition("-")
    return int(ms), int(n)


class Cluster(Faults):
    """Worker processes, workflows and the steps that drive them."""

    def __init__(self, url: str, prefix: str, processes: int = 2) -> None:
        self.url = url
        self.prefix = prefix
        self.plan: dict[str, Case] = {}
        self.stats: collections.Counter[str] = collections.Counter()
        self._names = itertools.count()
        self.procs: list[Process] = []
        for _ in range(processes):
            self.procs.append(self._spawn())
        self.client: Any = connect(url)  # a cluster's too
        """The test's own connection (processes come and go with theirs)."""
        self.keys = Keys(prefix)
        self.workflows: list[Tracked] = []
        self._order: dict[str, tuple[int, ...]] = {}
        """Workflow id -> its position in ``workflows``, a child's after its parent's
        (its node and attempt): ids are random, positions not."""

    def _spawn(self, index: int | None = None) -> Process:
        index = len(self.procs) if index is None else index
        options: dict[str, Any] = {}
        if "speculate" in inspect.signature(Worker).parameters:
            # Process 0 makes decisions ahead of the outcome when it can (one round
            # trip), process 1 never does: both paths run, and meet.
            options["speculate"] = index == 0
        name = f"w{next(self._names)}"
        return Process(self.url, self.prefix, name, self.plan, self.stats, options)

    def close(self) -> None:
        for proc in self.procs:
            proc.close()
        self.client.close()

    @contextlib.contextmanager
    def running(self, index: int, point: str | None = None) -> Iterator[Process]:
        """Run a step in process ``index``; if it crashes, replace the process."""
        proc = self.procs[index]
        if point:
            self.stats[f"armed {point}"] += 1
        try:
            with armed(point):
                yield proc
        except Crash as crash:
            self.stats[f"crash {crash}"] += 1
            self.kill(index)

    # -- steps ---------------------------------------------------------------------

    def submit(self, case: Case) -> str:
        app = self.procs[0].app
        workflow_id = app.new_workflow_id()
        self.plan[workflow_id] = case  # before the submit: its messages exist at once
        app.submit(case.canvas, workflow_id=workflow_id)
        self._order[workflow_id] = (len(self.workflows),)
        self.workflows.append(Tracked(workflow_id, case))
        return workflow_id

    def _order_of(self, workflow_id: str) -> tuple[int, ...]:
        """A workflow's position; a child workflow (a ``Child`` node's, seen for the
        first time in a queue) is tracked from then on, its case its node's canvas."""
        if workflow_id not in self._order:
            submitted = self.handle(workflow_id).history()[0].event
            assert isinstance(submitted, WorkflowSubmitted)
            link = submitted.options["parent"]
            parent = next(t for t in self.workflows if t.workflow_id == link["workflow_id"])
            canvas = child_canvas(parent.case, link["node"])
            self._order[workflow_id] = (
                *self._order_of(parent.workflow_id),
                link["node"],
                link["attempt"],
            )
            case = Case(canvas=canvas, compiled=compile_canvas(canvas), fail_until={})
            self.workflows.append(Tracked(workflow_id, case))
            self.stats["child workflows"] += 1
        return self._order[workflow_id]

    def messages(self) -> list[QueueMessage]:
        """Every message in the queues, in an order that does not depend on timing:
        by workflow, node, attempt, then stream id (copies of one attempt)."""
        out = []
        for queue in self.queue_keys():
            pending: Any = self.client.xpending_range(queue, WORKER_GROUP, "-", "+", 10_000)
            holders = {p["message_id"].decode(): p["consumer"].decode() for p in pending}
            entries: Any = self.client.xrange(queue)
            for raw_id, fields in entries:
                msg_id, data = raw_id.decode(), fields.get(b"m", b"")
                workflow_id, node, attempt, _ = decode_task_message(data)
                order = (self._order_of(workflow_id), node, attempt, _id_key(msg_id))
                out.append(QueueMessage(order, queue, msg_id, data, holders.get(msg_id)))
        return sorted(out)

    def _stage(self) -> None:
        """Time passes (delayed tasks fall due) and new messages are read into the
        group under INBOX: from there each delivery takes the message it is told to,
        whatever order timing gave the stream (hypothesis replays a failure exactly)."""
        self.fast_forward()
        queues = dict.fromkeys(self.queue_keys(), ">")
        while self.client.xreadgroup(WORKER_GROUP, INBOX, queues, count=1000):
            pass

    def deliver(self, index: int, count: int, pick: int, point: str | None) -> None:
        """A worker fetches up to ``count`` new messages (a batch, from ``pick`` on) and
        dispatches them: parse, start script with the results script, one round trip."""
        self._stage()
        new = [m for m in self.messages() if m.holder == INBOX]
        if not new:
            return
        first = pick % len(new)
        chosen = new[first : first + count]
        with self.running(index, point) as proc:
            self._dispatch(proc, chosen)
            self.stats["delivered"] += len(chosen)

    def _dispatch(self, proc: Process, chosen: list[QueueMessage]) -> None:
        worker = proc.worker
        messages = []
        for m in chosen:
            claimed: Any = self.client.xclaim(m.queue, WORKER_GROUP, worker.name, 0, [m.msg_id])
            if claimed and claimed[0][1]:
                messages.append((m.queue, m.msg_id, m.data))
        if messages:
            worker.consumer.dispatch(messages)

    def redeliver(self, index: int, pick: int, point: str | None) -> None:
        """A message another worker holds is delivered again (XCLAIM, idle 0: its lease
        ran out), or the same worker gets it again."""
        held = [m for m in self.messages() if m.holder not in (None, INBOX)]
        if held:
            with self.running(index, point) as proc:
                self._dispatch(proc, [held[pick % len(held)]])
                self.stats["redelivered"] += 1

    def claim(self, index: int, point: str | None) -> None:
        """The worker's own claim path (XAUTOCLAIM past the lease, here 0 ms)."""
        with self.running(index, point) as proc:
            messages = proc.worker.consumer.takeover.claim_stale(100)
            if messages:
                self.stats["claimed"] += len(messages)
                proc.worker.consumer.dispatch(messages)

    def run_job(self, pick: int, point: str | None) -> None:
        """A pool thread of some worker runs one of its jobs: body, outcome, inline
        projection, ack (or, for ALREADY_DONE, the projection again and the ack)."""
        jobs = sorted(
            (self._job_order(item), i, j)
            for i, proc in enumerate(self.procs)
            for j, item in enumerate(proc.pool.items)
        )
        if not jobs:
            self.stats["run_job: nothing to run"] += 1
            return
        _, index, j = jobs[pick % len(jobs)]
        pool = self.procs[index].pool
        fn, args = pool.items.pop(j)
        with self.running(index, point):
            fn(*args)
            pool.ended(None)
            self.stats["jobs run"] += 1

    def _job_order(self, item: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
        fn, args = item
        job = args[0]
        return (self._order_of(job.workflow_id), job.node, job.attempt, fn.__name__)

    def renew(self, index: int) -> None:
        leases = self.procs[index].worker.leases
        held = leases.held()
        if held:
            leases.renew(held)

    def fast_forward(self) -> None:
        """The timer, with time moved on: every delayed task and retry is due."""
        move_due(self.procs[0].app.store, [SHARD], QUEUES)
        for queue in QUEUES:
            delayed, target = self.keys.delayed(SHARD, queue), self.keys.queue(SHARD, queue)
            members: Any = self.client.zrange(delayed, 0, -1, withscores=True)
            for member, due in members:
                # Queued as the timer would queue it at its due time: a stream id no
                # earlier than that (the sweep looks for a lost message from there on).
                try:
                    self.client.xadd(target, {"m": member}, id=f"{int(due)}-*")
                except redis.ResponseError:  # the stream is past that time already
                    self.client.xadd(target, {"m": member})
                self.client.zrem(delayed, member)
                self.stats["fast-forwarded"] += 1

    def wake(self, pick: int | None) -> None:
        """A recovery wake-up falls due (its grace has passed): into the wake stream."""
        due = self.keys.wake_due(SHARD)
        members: Any = self.client.zrange(due, 0, -1)
        if not members:
            return
        chosen = members if pick is None else [members[pick % len(members)]]
        pipe = self.client.pipeline(transaction=True)
        for member in chosen:
            pipe.xadd(self.keys.wake(SHARD), {"m": member})
        pipe.zrem(due, *chosen)
        pipe.execute()
        self.stats["woken"] += len(chosen)

    def recover(self, index: int, point: str | None, *, claim: bool = False) -> None:
        """The recovery projector handles a wake-up (new, or claimed past its lease)."""
        wake_key = self.keys.wake(SHARD)
        with self.running(index, point) as proc:
            worker = proc.worker
            if claim:
                found: Any = self.client.xautoclaim(
                    wake_key, PROJECTOR_GROUP, worker.name, 0, "0-0", count=10
                )
                items = [(i, fields) for i, fields in found[1] if fields]
            else:
                reply: Any = self.client.xreadgroup(
                    PROJECTOR_GROUP, worker.name, {wake_key: ">"}, count=1
                )
                items = [item for _, entries in reply or [] for item in entries]
            for msg_id, fields in items:
                self.stats["recoveries"] += 1
                worker.recovery.handle(wake_key, msg_id.decode(), fields.get(b"m", b""))

    def sweep(self, index: int) -> None:
        """The stuck-workflow sweep (every active workflow counts as stuck)."""
        with self.running(index) as proc:
            self.stats["resent by sweep"] += StuckSweep(
                proc.app.store, proc.app.projector, stuck_after_ms=0
            ).run((SHARD,))

    # -- reading ---------------------------------------------------------------------

    def queue_keys(self) -> list[str]:
        return [self.keys.queue(SHARD, q) for q in QUEUES]

    def read(self, tracked: Tracked) -> tuple[list[Entry], bool]:
        """The workflow's log (live, or from its archive) and whether it is archived."""
        raw, archived = read_raw(self.client, self.keys, tracked.workflow_id)
        return [to_entry(item) for item in raw], archived

    def index(self, workflow_id: str) -> dict[str, bytes]:
        raw: Any = self.client.hgetall(self.keys.idx(workflow_id))
        return {k.decode(): v for k, v in raw.items()}

    def wake_ups(self, workflow_id: str) -> int:
        """Recovery wake-ups of a workflow not yet handled (due later, or in the stream)."""
        members: Any = self.client.zrange(self.keys.wake_due(SHARD), 0, -1)
        entries: Any = self.client.xrange(self.keys.wake(SHARD))
        found = [*members, *(fields.get(b"m", b"") for _, fields in entries)]
        return sum(decode_wake(m)[0] == workflow_id for m in found)

    def handle(self, workflow_id: str) -> WorkflowHandle:
        return self.procs[0].app.handle(workflow_id)

    def idle(self) -> bool:
        """Nothing left anywhere: queues, pending lists, delayed sets, wake-ups, jobs."""
        client = self.client
        for queue in self.queue_keys():
            if client.xlen(queue) or self._pending_count(queue, WORKER_GROUP):
                return False
        for queue in QUEUES:
            if client.zcard(self.keys.delayed(SHARD, queue)):
                return False
        wake = self.keys.wake(SHARD)
        if client.zcard(self.keys.wake_due(SHARD)) or client.xlen(wake):
            return False
        if self._pending_count(wake, PROJECTOR_GROUP):
            return False
        return not any(p.pool.items for p in self.procs)

    def _pending_count(self, key: str, group: str) -> int:
        summary: Any = self.client.xpending(key, group)
        return int(summary["pending"])

    def drain(self, max_rounds: int = 200) -> None:
        """Run everything left, without faults, until nothing is pending anywhere."""
        for _ in range(max_rounds):
            self.fast_forward()
            self.wake(None)
            while any(proc.pool.items for proc in self.procs):
                self.run_job(0, None)
            self.recover(0, None, claim=True)
            while self.client.xlen(self.keys.wake(SHARD)):
                before = self.stats["recoveries"]
                self.recover(0, None)
                if self.stats["recoveries"] == before:
                    break
            self.claim(0, None)
            self.deliver(0, 1000, 0, None)
            if self.idle():
                if not self.stats["messages lost"]:
                    # Messages, wake-ups and claims alone must finish every workflow.
                    for tracked in self.workflows:
                        self.read(tracked)
                        stuck = self.client.exists(self.keys.log(tracked.workflow_id))
                        assert not stuck, f"{tracked.workflow_id} stuck with nothing pending"
                    return
                # As the periodic sweep would find them: workflows whose messages were lost.
                resent = self.stats["resent by sweep"]
                self.sweep(0)
                if self.stats["resent by sweep"] == resent:
                    return
        raise AssertionError(f"not drained after {max_rounds} rounds")
