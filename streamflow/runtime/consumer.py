"""The consumer loop: reads task messages in batches, starts them, hands them to run.

A batch of messages is started in one round trip: per message, the start script decides
(DESIGN §8) and the results script returns what the task receives besides its own
arguments. A message the start step cannot handle stalls only itself: it stays pending
and is taken over after its lease.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis

from streamflow.logs import get_logger
from streamflow.model import codec
from streamflow.model.definition import TaskNode
from streamflow.model.errors import DecodeError, DefinitionError
from streamflow.model.events import TaskFailed, TaskStarted, TaskSucceeded, encode_event
from streamflow.model.messages import decode_task
from streamflow.model.schema import WORKER_GROUP
from streamflow.runtime.context import ChildStarter, TaskContext
from streamflow.runtime.executor import Executor
from streamflow.runtime.faults import crash_point
from streamflow.runtime.heartbeat import Heartbeat
from streamflow.runtime.jobs import Job, Runnable, UnknownActor, input_fields, task_inputs
from streamflow.runtime.leases import Leases
from streamflow.runtime.outage import Outage
from streamflow.runtime.pausing import PauseWatch
from streamflow.runtime.projector import Projector
from streamflow.runtime.recorder import Recorder
from streamflow.runtime.roles import lost_group
from streamflow.runtime.signals import waiter
from streamflow.runtime.takeover import Message, Takeover
from streamflow.store import scripts
from streamflow.store.connection import Store
from streamflow.store.group_reads import group_reads
from streamflow.store.log import parse_raw
from streamflow.store.scripts import Call, Reply, reply_code

log = get_logger(__name__)

RESULTS_CHUNK = 1000
"""At most this many inputs per results script call (big fan-ins take several)."""
START_CATCH_UP = 16
"""Log entries past the cached fold returned with a start: with them, a task alone in
its workflow can have its decisions made ahead (see ``Recorder``)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How a consumer reads and when it gives up on a message."""

    prefetch: int
    """Tasks held at most (running, waiting for a thread, or being recorded)."""
    lease_ms: int
    """A message not acknowledged for this long is taken over by others."""
    block_ms: int
    """How long one read waits for messages."""
    max_deliveries: int
    """Deliveries of one attempt after which it fails as poison."""
    max_unknown_deliveries: int
    """Deliveries of a message for an actor unknown here before it fails as poison."""


class Consumer:
    """Reads the queues of ``queue_keys`` (queue stream -> its shard) as consumer ``name``
    of the workers' group."""

    def __init__(
        self,
        name: str,
        queue_keys: Mapping[str, int],
        *,
        store: Store,
        projector: Projector,
        actors: Mapping[str, Runnable],
        executor: Executor,
        leases: Leases,
        recorder: Recorder,
        settings: Settings,
        heartbeat: Heartbeat,
        outage: Outage,
        start_child: ChildStarter | None = None,
    ) -> None:
        self.name = name
        self.start_child = start_child
        self.queue_keys = list(queue_keys)
        self.heartbeat = heartbeat
        self.store = store
        self.projector = projector
        self.actors = actors
        self.executor = executor
        self.leases = leases
        self.recorder = recorder
        self.settings = settings
        self._outage = outage
        self._reads = group_reads(store.wire(), WORKER_GROUP, name, queue_keys, settings.block_ms)
        self.pauses = PauseWatch(store)
        self._last_claim = self._last_reclaim = 0.0
        self._log = log.bind(consumer=name)
        self.takeover = Takeover(
            name, queue_keys, store=store, heartbeat=heartbeat, lease_ms=settings.lease_ms
        )

    def run(self, stopping: threading.Event, regroup: Callable[[], None]) -> None:
        """Fetch and dispatch until ``stopping``; Redis outages are waited out, not fatal;
        missing consumer groups (Redis lost its data) are created again by ``regroup``."""
        while not stopping.is_set():
            try:
                self._fetch(stopping)
            except redis.RedisError as exc:
                self.executor.observer.redis_error("read")
                if isinstance(exc, redis.ResponseError) and lost_group(exc):
                    regroup()
                else:
                    stopping.wait(self._outage.down(exc))
            except Exception:
                # A bug must not kill the worker: the batch's messages stay pending and
                # are taken over after their lease.
                self._log.exception("dispatch_failed")
                stopping.wait(1.0)
        # What reads in flight brought (a cluster's parked reads) is this consumer's:
        # started, then handed back with the rest of what was fetched but not started.
        leftover = self._reads.drain()
        if leftover:
            try:
                self.dispatch(leftover)
            except redis.RedisError as exc:
                self._log.warning("leftover_not_started", count=len(leftover), error=str(exc))

    def close(self) -> None:
        self._reads.close()

    def leave(self) -> None:
        """Leave the group where this consumer holds nothing any more (a graceful stop:
        what it still holds stays, for others to take)."""
        client = self.store.client
        for key in self.queue_keys:
            if not client.xpending_range(key, WORKER_GROUP, "-", "+", 1, consumername=self.name):
                client.xgroup_delconsumer(key, WORKER_GROUP, self.name)

    def _fetch(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            room = self.executor.in_flight.room(self.settings.prefetch, stopping)
            if stopping.is_set():
                return
            messages: list[Message] = []
            taken: dict[str, tuple[str, int]] = {}
            # Once a beat, who else holds messages; what those that stopped beating held
            # (they are dead) is taken first, as room allows.
            if time.monotonic() - self._last_reclaim > self.heartbeat.interval_s:
                self._last_reclaim = time.monotonic()
                self.takeover.find_dead()
            if self.takeover.suspects:
                messages += self.takeover.reclaim_dead(room, taken)
            # Often enough that a handed-back message is taken within a second.
            if time.monotonic() - self._last_claim > min(self.settings.lease_ms / 2000, 1.0):
                self._last_claim = time.monotonic()
                messages += self.takeover.claim_stale(room)
            fresh = not messages  # read for the first time: a lone task may run at once
            if fresh:
                messages += self._read(room)
            self._outage.up()
            if messages:
                self.dispatch(messages, taken, fresh=fresh)

    def _read(self, count: int) -> list[Message]:
        return self._reads.read(count)

    def dispatch(
        self,
        messages: Sequence[Message],
        taken: Mapping[str, tuple[str, int]] | None = None,
        *,
        fresh: bool = False,
    ) -> None:
        """Start each message (one round trip for all) and run what should run; ``taken``
        names the messages taken over from a dead consumer (see ``reclaim_dead``);
        ``fresh``: read for the first time, so a lone task runs at once (``runtime.lone``)."""
        jobs = [job for job in (self._parse(*message) for message in messages) if job]
        jobs = self.pauses.hold(jobs)  # those of paused queues and actors are parked
        for job in jobs:
            if job.lone and fresh:
                self._hold(job)
                self.executor.run(job)
            else:
                job.lone = False  # delivered again: the ordinary way, start first
        jobs = [job for job in jobs if not job.lone]
        for job in jobs:
            if taken and job.msg_id in taken:
                job.taken_from, job.taken_ms = taken[job.msg_id]
        while jobs:
            jobs = self._start(jobs)

    def _parse(self, queue_key: str, msg_id: str, data: bytes) -> Job | None:
        try:
            workflow_id, node, attempt, def_hash, lone = decode_task(data)
        except DecodeError as exc:
            self._dead_letter(queue_key, msg_id, data, f"undecodable message: {exc}")
            self.store.ack(queue_key, msg_id)
            return None
        try:
            definition = self.store.definitions.get(def_hash, workflow_id)
            task = definition.nodes[node] if node < len(definition.nodes) else None
            if not isinstance(task, TaskNode):
                raise DecodeError(f"node {node} is not a task of definition {def_hash}", data)
        except (DecodeError, DefinitionError) as exc:
            self.unreadable(queue_key, msg_id, data, workflow_id, exc)
            return None
        actor = self.actors.get(task.actor) or waiter(task)
        job = Job(
            queue_key,
            msg_id,
            data,
            workflow_id,
            node,
            attempt,
            definition,
            task,
            actor or UnknownActor(task.actor, task.options),
        )
        if actor is None:
            self._unknown_actor(job)
            return None
        if lone is not None:  # run at once if fresh; its start is recorded if it runs long
            job.lone = job.lone_message = True
            job.args_blob, job.start_seq = lone or None, 3
        return job

    def _start(self, jobs: list[Job]) -> list[Job]:
        """Run the start script for each job (one round trip); returns jobs to retry."""
        calls: list[Call] = []
        spans: list[tuple[int, int]] = []
        for job in jobs:
            wf = self.store.keys.workflow(job.workflow_id)
            started = TaskStarted(
                node=job.node, attempt=job.attempt, worker=self.name, msg_id=job.msg_id
            )
            first = len(calls)
            calls.append(
                scripts.start(
                    wf=wf,
                    queue=job.queue_key,
                    node=job.node,
                    attempt=job.attempt,
                    msg_id=job.msg_id,
                    started=encode_event(started),
                    finalizer=job.task.finalizer,
                    catch_up_after=self.projector.folds.last_id(job.workflow_id),
                    catch_up_count=START_CATCH_UP,
                    takeover=encode_event(dataclasses.replace(started, takeover=True)),
                )
            )
            fields = input_fields(job.definition, job.task)
            for i in range(0, len(fields), RESULTS_CHUNK):
                calls.append(scripts.results(wf=wf, fields=fields[i : i + RESULTS_CHUNK]))
            spans.append((first, len(calls)))
        results = self.store.scripts.batch(calls)
        retry: list[Job] = []
        for job, (first, end) in zip(jobs, spans, strict=True):
            try:
                if self._started(job, results[first], results[first + 1 : end]):
                    retry.append(job)
            except (DecodeError, DefinitionError) as exc:
                # Its log (or an input of the task) cannot be read: it cannot go on.
                self.leases.release(job)
                self.unreadable(job.queue_key, job.msg_id, job.data, job.workflow_id, exc)
            except Exception:
                # This message alone stays pending; it is taken over after its lease.
                self.leases.release(job)
                self._log.exception(
                    "task_start_failed",
                    workflow_id=job.workflow_id,
                    node=job.node,
                    attempt=job.attempt,
                    msg_id=job.msg_id,
                )
        return retry

    def _started(self, job: Job, raw: Any, inputs: Sequence[Any]) -> bool:
        """Act on one start reply; returns whether to start the job again."""
        if isinstance(raw, Exception):
            raise raw
        reply = reply_code(raw)
        self._log.debug(
            "task_delivered",
            workflow_id=job.workflow_id,
            node=job.node,
            attempt=job.attempt,
            reply=reply.value,
            msg_id=job.msg_id,
        )
        if reply is Reply.RUN:
            job.start_seq = int(raw[1])
            job.args_blob = raw[3] or None
            job.retry_base = int(raw[5])
            self.projector.folds.fold_raw(job.workflow_id, parse_raw(raw[4]))
            self._hold(job)
            deliveries = int(raw[2])
            if job.lone_message:
                # Its first delivery may have run without a start recorded: count the
                # message's own deliveries too.
                pending: Any = self.store.client.xpending_range(
                    job.queue_key, WORKER_GROUP, job.msg_id, job.msg_id, 1
                )
                if pending:
                    deliveries = max(deliveries, int(pending[0]["times_delivered"]))
            if deliveries > self.settings.max_deliveries:
                self._poison(job, deliveries)
                return False
            for chunk in inputs:
                if isinstance(chunk, Exception):
                    raise chunk
            values = [value for chunk in inputs for value in chunk]
            job.inputs = task_inputs(job, values, self._out_of_line(job.workflow_id))
            crash_point("worker.after_start_before_run")
            self.executor.run(job)
        elif reply in (Reply.DUP, Reply.STALE):
            self.store.ack(job.queue_key, job.msg_id)
        elif reply is Reply.ALREADY_DONE:
            self._hold(job)
            self.executor.track(self._reproject, job)
        elif reply is Reply.REBUILD:
            self.projector.rebuild(job.workflow_id)
            return True
        else:
            raise ValueError(f"start answered {raw!r:.200}")
        return False

    def _hold(self, job: Job) -> None:
        job.context = TaskContext(
            workflow_id=job.workflow_id,
            node=job.node,
            attempt=job.attempt,
            actor=job.actor.name,
            starter=self.start_child,
        )
        self.leases.hold(job)

    def _reproject(self, job: Job) -> None:
        """The attempt already has its outcome: issue its projection again, then ack."""
        try:
            self.recorder.reproject(job.workflow_id, job.queue_key, job.msg_id)
        finally:
            self.leases.release(job)

    def _out_of_line(self, workflow_id: str) -> Callable[[TaskSucceeded], Any]:
        def resolve(event: TaskSucceeded) -> Any:
            if not event.result_ref:
                return event.result
            key = self.store.keys.results(workflow_id)
            data: Any = self.store.client.hget(key, event.result_ref)
            return codec.decode(data)

        return resolve

    def _poison(self, job: Job, deliveries: int) -> None:
        """Too many deliveries of one attempt: fail it, keep the bytes."""
        reason = f"delivered {deliveries} times (max_deliveries={self.settings.max_deliveries})"
        self._dead_letter(job.queue_key, job.msg_id, job.data, reason)
        error = {"type": "PoisonMessageError", "message": reason, "traceback": ""}
        event = TaskFailed(node=job.node, attempt=job.attempt, error=error, retry_delay_ms=None)
        self.executor.track(self.executor.finish, job, event)

    def _unknown_actor(self, job: Job) -> None:
        """Leave the message for a worker that knows the actor, up to a bound."""
        pending = self.store.client.xpending_range(
            job.queue_key, WORKER_GROUP, min=job.msg_id, max=job.msg_id, count=1
        )
        deliveries = int(pending[0]["times_delivered"]) if pending else 1
        bound = self._log.bind(workflow_id=job.workflow_id, node=job.node, attempt=job.attempt)
        if deliveries < self.settings.max_unknown_deliveries:
            bound.warning("actor_unknown_here", actor=job.task.actor, deliveries=deliveries)
            return
        reason = f"actor {job.task.actor!r} unknown after {deliveries} deliveries"
        error = {"type": "UnknownActorError", "message": reason, "traceback": ""}
        event = TaskFailed(node=job.node, attempt=job.attempt, error=error, retry_delay_ms=None)
        self._dead_letter(job.queue_key, job.msg_id, job.data, reason)
        self.recorder.record(job.outcome(event))

    def unreadable(
        self, queue_key: str, msg_id: str, data: bytes, workflow_id: str, exc: Exception
    ) -> None:
        """The message's workflow cannot be read (its log or definition): the message
        becomes a dead letter and the workflow ends as failed, saying why."""
        self._dead_letter(queue_key, msg_id, data, f"workflow {workflow_id} unreadable: {exc}")
        self.store.ack(queue_key, msg_id)
        self.projector.end_unreadable(workflow_id, exc)

    def _dead_letter(self, queue_key: str, msg_id: str, data: bytes, reason: str) -> None:
        self.store.dead_letters.add(queue_key, msg_id, data, reason)
        self.executor.observer.dead_lettered(queue_key.rpartition(":q:")[2], reason)
        self._log.error("message_dead_lettered", queue=queue_key, msg_id=msg_id, reason=reason)
