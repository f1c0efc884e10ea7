"""The worker: reads task messages in batches, runs actors, records outcomes, projects.

One ``Worker`` runs every role by default: task execution (sync actors in a thread
pool, async actors on one event loop), inline projection in the thread that recorded an
outcome, the timer (delayed tasks, retries, recovery wake-ups) and a recovery projector
on the wake-up streams.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import random
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

import redis

from streamflow.logs import get_logger
from streamflow.model import codec
from streamflow.model.definition import NONE, TaskNode
from streamflow.model.errors import (
    DecodeError,
    DefinitionError,
    EncodeError,
    RateLimitExceeded,
    ResultTooLarge,
    ScriptError,
    StreamflowError,
    TimeLimitExceeded,
)
from streamflow.model.events import (
    HISTORY_WARNING_KEY,
    BarrierDecremented,
    Entry,
    Event,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    encode_event,
    encode_with_cause_hole,
)
from streamflow.model.index import END_COUNT
from streamflow.model.messages import decode_task_message, encode_wake, shard_of
from streamflow.model.options import to_ms
from streamflow.runtime.context import TaskContext, reset_current, set_current
from streamflow.runtime.faults import armed, crash_point
from streamflow.runtime.hooks import Hooks, TaskInfo, call_hooks
from streamflow.runtime.jobs import (
    Job,
    Runnable,
    UnknownActor,
    in_context,
    input_fields,
    task_inputs,
)
from streamflow.runtime.pool import TaskPool
from streamflow.runtime.projector import Projector, Speculation, Trigger
from streamflow.runtime.roles import Outage, renew, run_recovery, run_timer, run_watch
from streamflow.runtime.sweep import StuckSweep
from streamflow.store.connection import Store
from streamflow.store.keys import PROJECTOR_GROUP, WORKER_GROUP
from streamflow.store.log import parse_raw
from streamflow.store.scripts import Reply, reply_code
from streamflow.store.wire import Wire, stream_messages

log = get_logger(__name__)

RESULTS_CHUNK = 1000
HAND_BACK_IDLE_MS = 10**12
"""Idle time given to a message handed back: any lease has run out."""
CATCH_UP = 1000
START_CATCH_UP = 16


class Host(Protocol):
    """What a worker serves (an App): its store and projector, actors and hooks."""

    @property
    def store(self) -> Store: ...

    @property
    def projector(self) -> Projector: ...

    @property
    def actors(self) -> Mapping[str, Runnable]: ...

    @property
    def hooks(self) -> Sequence[Hooks]: ...

    @property
    def large_result_bytes(self) -> int: ...

    @property
    def max_result_bytes(self) -> int: ...


class Worker:
    """Runs the actors of ``app`` on the given queues.

    Args:
        app: the App whose actors this worker runs.
        queues: queues to read (default: every queue of the registered actors).
        concurrency: threads running sync actors (and concurrent async ones). The
            worker holds up to 4 x ``concurrency`` tasks: running, started and waiting
            for a thread, or being recorded.
        lease_ms: a message not acknowledged for this long is taken over by others.
        max_unknown_deliveries: deliveries of a message for an actor no worker here
            knows before it fails as poison.
        tasks: run tasks (False: a process for the other roles only).
        recovery: run a recovery projector on the wake-up streams.
        timer: move due delayed tasks, retries and wake-ups into their streams.
        consumer: consumer name (default: host, pid and a random suffix).
        grace_s: on stop, how long in-flight tasks may take to finish.
        sweep_interval_s: how often the timer removes workflows past their retention.
        max_deliveries: deliveries of one attempt (counted from its TaskStarted events)
            after which it fails as poison and its bytes go to the dead-letter stream.
        stuck_after_s: an active workflow with no new event for this long is swept:
            projected again, and its lost task messages re-sent.
        speculate: when a task is the only one of its workflow in flight, make the
            decisions that follow its outcome before recording it and send both in one
            round trip (the apply script checks the guess; a wrong one costs nothing).
    """

    def __init__(
        self,
        app: Host,
        *,
        queues: Sequence[str] | None = None,
        concurrency: int = 8,
        lease_ms: int = 30_000,
        max_unknown_deliveries: int = 5,
        tasks: bool = True,
        recovery: bool = True,
        timer: bool = True,
        consumer: str | None = None,
        block_ms: int = 500,
        grace_s: float = 30.0,
        sweep_interval_s: float = 1.0,
        max_deliveries: int = 5,
        stuck_after_s: float = 60.0,
        speculate: bool = True,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1 (got {concurrency!r})")
        self.app = app
        self.store = app.store
        self.client = app.store.client
        self._fetch_wire = Wire(self.client)
        self.keys = app.store.keys
        self.scripts = app.store.scripts
        self.projector = app.projector
        self.queues = tuple(queues or sorted({a.options.queue for a in app.actors.values()}))
        if not self.queues and tasks:
            raise ValueError("the worker has no queue to read (no actor registered, none given)")
        self.shards = tuple(range(app.store.shards))
        self.concurrency = concurrency
        self.lease_ms = lease_ms
        self.max_unknown_deliveries = max_unknown_deliveries
        self.tasks = tasks
        self.recovery = recovery
        self.timer = timer
        self.block_ms = block_ms
        self.grace_s = grace_s
        self.sweep_interval_s = sweep_interval_s
        self.max_deliveries = max_deliveries
        # Decisions made ahead of an outcome skip the windows crash-point tests aim at.
        self.speculate = speculate and not armed()
        self._stuck = StuckSweep(
            self.store, self.projector, stuck_after_ms=to_ms(stuck_after_s, "stuck_after_s")
        )
        self._leases: dict[tuple[str, str], Job] = {}
        self._deadlines: dict[int, float] = {}
        self._watch_lock = threading.Lock()
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self._queue_keys = [self.keys.queue(s, q) for s in self.shards for q in self.queues]
        self._stopping = threading.Event()
        self._inflight = 0
        self._last_claim = 0.0
        self._claim_cursor: dict[str, str] = {}
        self._inflight_cv = threading.Condition()
        self._pool = TaskPool(concurrency, "streamflow-task", self._ended)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []
        self._log = log.bind(consumer=self.consumer)
        self._outage = Outage(self._log)
        self._handing_back = False

    # -- lifecycle ------------------------------------------------------------------

    def run(self) -> None:
        """Run until ``stop`` (or SIGTERM/SIGINT when called from the main thread)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stopping.set())
        self._setup()
        self._log.info(
            "worker_started",
            queues=self.queues,
            concurrency=self.concurrency,
            roles=[r for r in ("tasks", "timer", "recovery") if getattr(self, r)],
        )
        try:
            if self.tasks:
                self._fetch_loop()
            else:
                self._stopping.wait()
        finally:
            self._shutdown()

    def start(self) -> Worker:
        """Run in a background thread (for tests and embedding); returns self."""
        thread = threading.Thread(target=self.run, name="streamflow-worker", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop fetching, let in-flight work finish (up to ``timeout`` s), then return."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _check_server(self) -> None:
        """Refuse a Redis that may evict keys (the log is the truth); warn on settings
        that waste memory."""
        try:
            config: Any = self.client.config_get("maxmemory-policy")
            node_bytes: Any = self.client.config_get("stream-node-max-bytes")
        except redis.ResponseError as exc:  # CONFIG disabled (managed Redis)
            self._log.warning("redis_config_unreadable", error=str(exc))
            return
        policy = config.get(b"maxmemory-policy") or config.get("maxmemory-policy") or b""
        policy = policy.decode() if isinstance(policy, bytes) else str(policy)
        if policy != "noeviction":
            raise StreamflowError(
                f"Redis maxmemory-policy is {policy!r}; streamflow needs 'noeviction' "
                "(eviction could delete a workflow's log, the only truth)"
            )
        size = node_bytes.get(b"stream-node-max-bytes") or node_bytes.get("stream-node-max-bytes")
        if size is not None and int(size) > 1024:
            self._log.warning(
                "stream_node_max_bytes_large",
                value=int(size),
                advice="set stream-node-max-bytes to 512: each log preallocates a node",
            )

    def _setup(self) -> None:
        self._check_server()
        for key in self._queue_keys:
            self._create_group(key, WORKER_GROUP)
        for shard in self.shards:
            self._create_group(self.keys.wake(shard), PROJECTOR_GROUP)
        if any(a.is_async for a in self.app.actors.values()):
            self._loop = asyncio.new_event_loop()
            self._spawn(self._loop.run_forever, "streamflow-asyncio", join=False)
        if self.timer:
            self._spawn(lambda: run_timer(self), "streamflow-timer")
        if self.tasks:
            self._spawn(lambda: run_watch(self), "streamflow-watch")
        if self.recovery:
            self._spawn(lambda: run_recovery(self), "streamflow-recovery")

    def _spawn(self, target: Any, name: str, join: bool = True) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        if join:
            self._helpers.append(thread)

    @property
    def _helpers(self) -> list[threading.Thread]:
        helpers: list[threading.Thread] = self.__dict__.setdefault("_helper_threads", [])
        return helpers

    def _create_group(self, key: str, group: str) -> None:
        try:
            self.client.xgroup_create(key, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _shutdown(self) -> None:
        deadline = time.monotonic() + self.grace_s
        with self._inflight_cv:
            while self._inflight and time.monotonic() < deadline:
                self._inflight_cv.wait(deadline - time.monotonic())
        self._handing_back = True
        self._pool.shutdown(wait=self._inflight == 0)
        for thread in self._helpers:
            thread.join(5)
        self._fetch_wire.close()
        with self._watch_lock:
            unfinished = list(self._leases.values())
        if unfinished:
            # Past the grace period: let other workers take these at once, rather than
            # after the lease (a body still running here may finish; first outcome wins).
            try:
                renew(self, unfinished, idle_ms=HAND_BACK_IDLE_MS)
                self._log.info("leases_handed_back", count=len(unfinished))
            except redis.RedisError as exc:
                self._log.warning("lease_hand_back_failed", error=str(exc))
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._log.info("worker_stopped", unfinished=self._inflight)

    # -- fetching -------------------------------------------------------------------

    def _fetch(self) -> None:
        """Fetch and dispatch until stopped (raises on Redis errors)."""
        prefetch = self.concurrency * 4
        while not self._stopping.is_set():
            with self._inflight_cv:
                while self._inflight >= prefetch and not self._stopping.is_set():
                    self._inflight_cv.wait(0.5)
                room = prefetch - self._inflight
            if self._stopping.is_set():
                return
            messages: list[tuple[str, str, bytes]] = []
            # Often enough that a handed-back message is taken within a second.
            if time.monotonic() - self._last_claim > min(self.lease_ms / 2000, 1.0):
                self._last_claim = time.monotonic()
                messages += self._claim_stale(room)
            if not messages:
                (reply,) = self._fetch_wire.execute(
                    [
                        (
                            "XREADGROUP",
                            "GROUP",
                            WORKER_GROUP,
                            self.consumer,
                            "COUNT",
                            room,
                            "BLOCK",
                            self.block_ms,
                            "STREAMS",
                            *self._queue_keys,
                            *(">" for _ in self._queue_keys),
                        )
                    ]
                )
                if isinstance(reply, Exception):
                    raise reply
                messages += stream_messages(reply)
            self._outage.up()
            if messages:
                self._dispatch(messages)

    def _fetch_loop(self) -> None:
        """Fetch and dispatch until stopped; Redis outages are waited out, not fatal."""
        while not self._stopping.is_set():
            try:
                self._fetch()
            except redis.RedisError as exc:
                self._stopping.wait(self._outage.down(exc))
            except Exception:
                # A bug must not kill the worker: the batch's messages stay pending and
                # are taken over after their lease.
                self._log.exception("dispatch_failed")
                self._stopping.wait(1.0)

    def _claim_stale(self, count: int) -> list[tuple[str, str, bytes]]:
        """Messages whose holder has not acknowledged them within the lease."""
        out: list[tuple[str, str, bytes]] = []
        for key in self._queue_keys:
            claim: Any = self.client.xautoclaim(
                key,
                WORKER_GROUP,
                self.consumer,
                self.lease_ms,
                self._claim_cursor.get(key, "0-0"),
                count=count,
            )
            # Go on from where the scan stopped next time (0-0 after a full pass).
            self._claim_cursor[key] = claim[0].decode()
            for msg_id, fields in claim[1]:
                if fields:  # deleted meanwhile: XAUTOCLAIM drops it from the PEL
                    out.append((key, msg_id.decode(), fields.get(b"m", b"")))
        return out

    def _dispatch(self, messages: list[tuple[str, str, bytes]]) -> None:
        jobs: list[Job] = []
        for queue_key, msg_id, data in messages:
            job = self._parse(queue_key, msg_id, data)
            if job is not None:
                jobs.append(job)
        while jobs:
            jobs = self._start(jobs)

    def _parse(self, queue_key: str, msg_id: str, data: bytes) -> Job | None:
        try:
            workflow_id, node, attempt, def_hash = decode_task_message(data)
            definition = self.app.store.definitions.get(def_hash)
            task = definition.nodes[node] if 0 <= node < len(definition.nodes) else None
            if not isinstance(task, TaskNode):
                raise DecodeError(f"node {node} is not a task of definition {def_hash}", data)
        except (DecodeError, DefinitionError) as exc:
            self._dead_letter(queue_key, msg_id, data, f"undecodable message: {exc}")
            self._ack(queue_key, msg_id)
            return None
        actor = self.app.actors.get(task.actor)
        if actor is None:
            self._unknown_actor(queue_key, msg_id, data, workflow_id, node, attempt, task)
            return None
        return Job(queue_key, msg_id, data, workflow_id, node, attempt, definition, task, actor)

    def _start(self, jobs: list[Job]) -> list[Job]:
        """Run the start script for each job (one round trip); returns jobs to retry."""
        calls: list[tuple[str, list[str], list[Any]]] = []
        spans: list[tuple[int, int]] = []
        for job in jobs:
            keys = self._wf_keys(job.workflow_id)
            started = TaskStarted(
                node=job.node, attempt=job.attempt, worker=self.consumer, msg_id=job.msg_id
            )
            first = len(calls)
            finalizer = "1" if job.task.finalizer else "0"
            # A few entries past the cached fold: with them, a task alone in its
            # workflow can have its decisions made ahead (see _record).
            takeover = dataclasses.replace(started, takeover=True)
            calls.append(
                (
                    "start",
                    [*keys[:3], job.queue_key],
                    [
                        job.node,
                        job.attempt,
                        job.msg_id,
                        encode_event(started),
                        finalizer,
                        self.projector.last_id(job.workflow_id),
                        START_CATCH_UP,
                        encode_event(takeover),
                    ],
                )
            )
            fields = input_fields(job.definition, job.task)
            for i in range(0, len(fields), RESULTS_CHUNK):
                calls.append(("results", keys[:2], fields[i : i + RESULTS_CHUNK]))
            spans.append((first, len(calls)))
        results = self.scripts.batch(self.client, calls)
        retry: list[Job] = []
        for job, (first, end) in zip(jobs, spans, strict=True):
            raw = results[first]
            if isinstance(raw, Exception):
                raise raw
            reply = reply_code(raw)
            bound = self._log.bind(workflow_id=job.workflow_id, node=job.node, attempt=job.attempt)
            bound.debug("task_delivered", reply=reply.value, msg_id=job.msg_id)
            if reply is Reply.RUN:
                job.start_seq = int(raw[1])
                job.args_blob = raw[3] or None
                self.projector.fold_raw(job.workflow_id, parse_raw(raw[4]))
                self._lease(job)
                deliveries = int(raw[2])
                if deliveries > self.max_deliveries:
                    self._poison(job, deliveries)
                    continue
                values = [value for chunk in results[first + 1 : end] for value in chunk]
                job.inputs = task_inputs(job, values, self._out_of_line(job.workflow_id))
                crash_point("worker.after_start_before_run")
                self._submit(job)
            elif reply in (Reply.DUP, Reply.STALE):
                self._ack(job.queue_key, job.msg_id)
            elif reply is Reply.ALREADY_DONE:
                self._lease(job)
                self._track(self._reproject, job)
            elif reply is Reply.REBUILD:
                self.projector.rebuild(job.workflow_id)
                retry.append(job)
            else:
                raise ScriptError(f"start answered {raw!r}")
        return retry

    def _track(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on a task thread, counted in flight until it ends."""
        with self._inflight_cv:
            self._inflight += 1
        try:
            self._pool.submit(fn, *args)
        except RuntimeError:  # shut down: never ran
            self._ended(None)
            raise

    def _ended(self, error: BaseException | None) -> None:
        if error is not None:
            self._log.error("worker_job_crashed", exc_info=error)
        with self._inflight_cv:
            self._inflight -= 1
            self._inflight_cv.notify_all()

    # -- running --------------------------------------------------------------------

    def _arguments(self, job: Job) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        if job.args_blob:
            args, kwargs = codec.decode(job.args_blob)
        return [*args, *job.inputs], kwargs

    def _submit(self, job: Job) -> None:
        job.started = time.monotonic()
        if not (job.actor.is_async and self._loop is not None):
            self._track(self._run_sync, job)
            return
        try:
            args, kwargs = self._arguments(job)
            self._before_task(job, args, kwargs)
            coroutine = in_context(job, job.actor.fn(*args, **kwargs))
        except Exception as exc:  # e.g. wrong arguments: a failure of the task, recorded
            self._track(self._finish, job, self._failure(job, exc))
            return
        with self._inflight_cv:
            self._inflight += 1
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        job.future = future

        def done(f: Future[Any]) -> None:
            try:
                self._track(self._complete_async, job, f)
            finally:
                with self._inflight_cv:
                    self._inflight -= 1
                    self._inflight_cv.notify_all()

        future.add_done_callback(done)

    def _run_sync(self, job: Job) -> None:
        token = set_current(job.context)
        ident = threading.get_ident()
        try:
            args, kwargs = self._arguments(job)
            self._before_task(job, args, kwargs)
            limit_ms = job.task.options.time_limit_ms
            if limit_ms:
                with self._watch_lock:
                    self._deadlines[ident] = time.monotonic() + limit_ms / 1000
            try:
                result = job.actor.fn(*args, **kwargs)
            finally:
                # Under the lock: no time-limit exception is injected after this.
                with self._watch_lock:
                    self._deadlines.pop(ident, None)
        except Exception as exc:
            reset_current(token)
            if isinstance(exc, TimeLimitExceeded) and not str(exc):
                limit = job.task.options.time_limit_ms
                exc = TimeLimitExceeded(f"{job.actor.name} ran longer than {limit} ms")
            self._after_task(job, exception=exc)
            self._finish(job, self._failure(job, exc))
        else:
            reset_current(token)
            self._after_task(job, result=result)
            crash_point("worker.after_run_before_record")
            self._finish(job, self._success(job, result))

    def _complete_async(self, job: Job, future: Future[Any]) -> None:
        try:
            result = future.result()
        except TimeoutError:
            exc = TimeLimitExceeded(
                f"{job.actor.name} ran longer than {job.task.options.time_limit_ms} ms"
            )
            self._after_task(job, exception=exc)
            self._finish(job, self._failure(job, exc))
        except Exception as exc:
            self._after_task(job, exception=exc)
            self._finish(job, self._failure(job, exc))
        else:
            self._after_task(job, result=result)
            self._finish(job, self._success(job, result))

    def _before_task(self, job: Job, args: list[Any], kwargs: dict[str, Any]) -> None:
        if self.app.hooks:
            job.info = TaskInfo(
                workflow_id=job.workflow_id,
                node=job.node,
                attempt=job.attempt,
                actor=job.actor.name,
                args=args,
                kwargs=kwargs,
            )
            call_hooks(self.app.hooks, "before_task", job.info)

    def _after_task(self, job: Job, **outcome: Any) -> None:
        if self.app.hooks and job.info is not None:
            call_hooks(self.app.hooks, "after_task", job.info, **outcome)

    def _success(self, job: Job, result: Any) -> Event:
        try:
            data = codec.encode_checked(result, what=f"result of {job.actor.name}")
        except EncodeError as exc:
            return self._failure(job, exc)
        if len(data) > self.app.max_result_bytes:
            too_large = ResultTooLarge(
                f"result of {job.actor.name} is {len(data)} bytes encoded, "
                f"over the limit of {self.app.max_result_bytes}"
            )
            return self._failure(job, too_large)
        if len(data) > self.app.large_result_bytes:
            # Out of line: the log keeps a reference, the outcome script stores the bytes.
            job.blob = data
            ref = f"{job.node}:{job.attempt}"
            return TaskSucceeded(
                node=job.node, attempt=job.attempt, result_ref=ref, cause=job.start_seq
            )
        return TaskSucceeded(node=job.node, attempt=job.attempt, result=result, cause=job.start_seq)

    def _failure(self, job: Job, exc: BaseException) -> Event:
        options = job.task.options
        retry_delay_ms = None
        later = isinstance(exc, RateLimitExceeded)
        backoff = min(options.max_backoff_ms, options.min_backoff_ms * 2 ** (job.attempt - 1))
        # Jitter is drawn here, by the shell, and recorded in the event.
        jittered = int(backoff * random.uniform(0.5, 1.0))
        if later:
            # Not the task's fault: try again soon, whatever the retry policy.
            retry_delay_ms = int(options.min_backoff_ms * random.uniform(0.5, 1.5))
        elif isinstance(exc, job.actor.throws):
            pass  # fails at once
        elif job.actor.retry_when is not None:
            if self._ask_retry_when(job, exc):
                retry_delay_ms, later = jittered, True  # retry_when overrides max_retries
        elif job.attempt <= options.max_retries:
            retry_delay_ms = jittered
        error = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": "".join(traceback.format_exception(exc)),
        }
        return TaskFailed(
            node=job.node,
            attempt=job.attempt,
            error=error,
            retry_delay_ms=retry_delay_ms,
            later=later,
            cause=job.start_seq,
        )

    def _ask_retry_when(self, job: Job, exc: BaseException) -> bool:
        assert job.actor.retry_when is not None
        try:
            return bool(job.actor.retry_when(job.attempt - 1, exc))
        except Exception:
            self._log.exception("retry_when_failed", actor=job.actor.name)
            return False

    # -- recording and projecting ---------------------------------------------------

    def _finish(self, job: Job, event: Event) -> None:
        """Record the outcome, project it inline, and acknowledge the message."""
        try:
            self._finish_leased(job, event)
        finally:
            self._unlease(job)

    def _finish_leased(self, job: Job, event: Event) -> None:
        duration_ms = round((time.monotonic() - job.started) * 1000, 3) if job.started else 0
        where = {
            "workflow_id": job.workflow_id,
            "node": job.node,
            "attempt": job.attempt,
            "actor": job.actor.name,
        }
        ok = isinstance(event, TaskSucceeded)
        self._log.debug("task_finished", **where, ok=ok, duration_ms=duration_ms)
        if not ok:
            assert isinstance(event, TaskFailed)
            self._log.info(
                "task_failed",
                **where,
                error=event.error["type"],
                message=event.error["message"],
                retry_delay_ms=event.retry_delay_ms,
            )
        self._record(job, event)

    def _record(self, job: Job, event: Event) -> None:
        wf = job.workflow_id
        keys = self._wf_keys(wf)
        ok = isinstance(event, TaskSucceeded)
        final_failure = isinstance(event, TaskFailed) and event.retry_delay_ms is None
        decrement_key, head, tail = "", b"", b""
        # A success (or a tolerated final failure) decrements the task's barrier, in the
        # same script as the outcome: fan-in outcomes then never conflict.
        done = ok or (final_failure and job.task.allow_failure)
        if done and job.task.succ != NONE:
            decrement = BarrierDecremented(barrier=job.task.succ, source=job.node)
            decrement_key = decrement.idempotency_key()
            head, tail = encode_with_cause_hole(decrement)
        wake = encode_wake(wf, f"out:{job.node}:{job.attempt}")
        payload = encode_event(event)
        trigger = Trigger(job.queue_key, job.msg_id, wake)
        for _ in range(10):
            speculation = self._speculate(job, event, payload, decrement_key, head, tail)
            quiet = self._quiet_check(job, ok, done, speculation is None)
            outcome_call = (
                "outcome",
                [keys[0], keys[1], keys[2], keys[3], self.keys.results(wf), job.queue_key],
                [
                    job.node,
                    job.attempt,
                    payload,
                    "1" if ok else "F" if final_failure else "0",
                    decrement_key,
                    head,
                    wake,
                    self.projector.recovery_grace_ms,
                    # A guess that fails, or an outcome that may be quiet (whose entries
                    # nobody would fold), is followed by a projection that reads the log.
                    self.projector.last_id(wf) if speculation is None and not quiet[0] else "",
                    CATCH_UP,
                    tail,
                    "1" if job.task.finalizer else "0",
                    event.result_ref if isinstance(event, TaskSucceeded) else "",
                    job.blob,
                    *quiet,
                ],
            )
            applied: Any = None
            if speculation is None:
                raw = self.scripts.call("outcome", outcome_call[1], outcome_call[2])
            else:
                guess, apply_call = speculation
                raw, applied = self.scripts.batch(self.client, [outcome_call, apply_call])
                if isinstance(raw, Exception):
                    raise raw
                if isinstance(applied, Exception):
                    self._log.warning("speculative_apply_failed", workflow_id=wf, error=applied)
                    applied = None
            reply = reply_code(raw)
            if reply is Reply.REBUILD:
                self.projector.rebuild(wf)
                continue
            if reply is Reply.STALE:
                self._log.info(
                    "outcome_rejected", workflow_id=wf, node=job.node, attempt=job.attempt
                )
                self._ack(job.queue_key, job.msg_id)
                return
            if reply is not Reply.OK:
                raise ScriptError(f"outcome answered {raw!r}")
            seq, stream_id = int(raw[1]), raw[2].decode()
            if applied is not None and reply_code(applied) is Reply.OK:
                # The decisions made ahead held: projected in the outcome's round trip.
                archived, ended = bool(int(applied[3])), bool(int(applied[4]))
                self.projector.settle(wf, guess.decisions, archived, ended, guess.done)
                return
            if int(raw[5]):
                return  # nothing follows from it: the script acknowledged the message
            caught_up = parse_raw(raw[3])
            # Fewer entries than asked for: the reply reached the log's end.
            fresh = self.projector.fold_raw(wf, caught_up) and len(caught_up) < CATCH_UP
            cause = Entry(seq=seq, stream_id=stream_id, event=event)
            crash_point("worker.after_record_before_project")
            self.projector.project(wf, cause, trigger, fresh=fresh)
            return
        raise StreamflowError(f"recording the outcome of {wf} node {job.node} did not settle")

    def _quiet_check(self, job: Job, ok: bool, done: bool, allowed: bool) -> list[Any]:
        """ARGV 15-18 of the outcome script: the count the outcome adds one to (its
        barrier's decrements, or for a sink done, the workflow's end), and what lets the
        script tell that nothing follows from this outcome (a success short of its count)
        and acknowledge it without a projection."""
        task = job.task
        counter: int | str = ""
        if done and task.succ != NONE:
            counter = task.succ  # counted with the decrement (once)
        elif done and not task.finalizer:
            counter = END_COUNT
        if not allowed or not ok or task.finalizer or task.on_success != NONE or counter == "":
            return [0, counter, 0, ""]
        state = self.projector.cached(job.workflow_id).state
        # The budget must be known here (it is once the submission is folded).
        if not state.def_hash:
            return [0, counter, 0, ""]
        budget = state.options.get("history")
        # The event count at which the budget decides something next: its warning's,
        # then (once the warning is in the log) its limit's.
        below = (budget[2] if HISTORY_WARNING_KEY in state.keys else budget[0]) if budget else 2**62
        if task.succ != NONE:
            reaches = len(job.definition.barrier(task.succ).sources)
        else:
            reaches = len(job.definition.sinks)
        return [reaches, counter, below, job.msg_id]

    def _speculate(
        self,
        job: Job,
        event: Event,
        payload: bytes,
        decrement_key: str,
        head: bytes,
        tail: bytes,
    ) -> tuple[Speculation, tuple[str, list[str], list[Any]]] | None:
        """The apply call to send with the outcome, if its decisions can be made now."""
        if not self.speculate:
            return None
        wf = job.workflow_id
        seq = self.projector.cached(wf).state.n + 1
        outcome = Entry(seq=seq, stream_id="0-0", event=event, size=len(payload))
        decrement = None
        if decrement_key:
            size = len(head) + len(codec.pack(seq)) + len(tail)
            event_of_decrement = BarrierDecremented(
                barrier=job.task.succ, source=job.node, cause=seq
            )
            decrement = Entry(seq=seq + 1, stream_id="0-0", event=event_of_decrement, size=size)
        guess = self.projector.speculate(wf, outcome, decrement)
        if guess is None:
            return None
        keys, args = self.projector.apply_call(
            wf,
            guess.definition,
            guess.decisions,
            {},  # due times relative to the outcome's time, which the script knows
            guess.expected,
            guess.folded,
            Trigger(job.queue_key, job.msg_id, encode_wake(wf, f"out:{job.node}:{job.attempt}")),
            guess.done,
            # Its position and its bytes: another run of this attempt may record first.
            guard=(f"out:{job.node}:{job.attempt}", seq, hashlib.sha1(payload).hexdigest()),
        )
        return guess, ("apply", keys, args)

    def _reproject(self, job: Job) -> None:
        """The attempt already has its outcome: issue its projection again, then ack."""
        try:
            self.projector.project(job.workflow_id, None, Trigger(job.queue_key, job.msg_id))
        finally:
            self._unlease(job)

    def _out_of_line(self, workflow_id: str) -> Callable[[TaskSucceeded], Any]:
        def resolve(event: TaskSucceeded) -> Any:
            if not event.result_ref:
                return event.result
            data: Any = self.client.hget(self.keys.results(workflow_id), event.result_ref)
            return codec.decode(data)

        return resolve

    def _wf_keys(self, workflow_id: str) -> list[str]:
        keys = self.keys
        return [
            keys.log(workflow_id),
            keys.idx(workflow_id),
            keys.archive(workflow_id),
            keys.wake_due(shard_of(workflow_id)),
        ]

    def _ack(self, queue_key: str, msg_id: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(queue_key, WORKER_GROUP, msg_id)
        pipe.xdel(queue_key, msg_id)
        pipe.execute()

    # -- leases, time limits, cancellation -------------------------------------------

    def _lease(self, job: Job) -> None:
        job.context = TaskContext(
            workflow_id=job.workflow_id, node=job.node, attempt=job.attempt, actor=job.actor.name
        )
        with self._watch_lock:
            self._leases[(job.queue_key, job.msg_id)] = job

    def _unlease(self, job: Job) -> None:
        with self._watch_lock:
            self._leases.pop((job.queue_key, job.msg_id), None)

    def _poison(self, job: Job, deliveries: int) -> None:
        """Too many deliveries of one attempt: fail it, keep the bytes."""
        reason = f"delivered {deliveries} times (max_deliveries={self.max_deliveries})"
        self._dead_letter(job.queue_key, job.msg_id, job.data, reason)
        error = {"type": "PoisonMessageError", "message": reason, "traceback": ""}
        event = TaskFailed(node=job.node, attempt=job.attempt, error=error, retry_delay_ms=None)
        self._track(self._finish, job, event)

    def _dead_letter(self, queue_key: str, msg_id: str, data: bytes, reason: str) -> None:
        self.store.dead_letters.add(queue_key, msg_id, data, reason)
        self._log.error("message_dead_lettered", queue=queue_key, msg_id=msg_id, reason=reason)

    def _unknown_actor(
        self,
        queue_key: str,
        msg_id: str,
        data: bytes,
        workflow_id: str,
        node: int,
        attempt: int,
        task: TaskNode,
    ) -> None:
        """Leave the message for a worker that knows the actor, up to a bound."""
        pending = self.client.xpending_range(
            queue_key, WORKER_GROUP, min=msg_id, max=msg_id, count=1
        )
        deliveries = int(pending[0]["times_delivered"]) if pending else 1
        bound = self._log.bind(workflow_id=workflow_id, node=node, attempt=attempt)
        if deliveries < self.max_unknown_deliveries:
            bound.warning("actor_unknown_here", actor=task.actor, deliveries=deliveries)
            return
        reason = f"actor {task.actor!r} unknown after {deliveries} deliveries"
        error = {"type": "UnknownActorError", "message": reason, "traceback": ""}
        event = TaskFailed(node=node, attempt=attempt, error=error, retry_delay_ms=None)
        self._dead_letter(queue_key, msg_id, data, reason)
        job = Job(
            queue_key,
            msg_id,
            data,
            workflow_id,
            node,
            attempt,
            self.app.store.definitions.get(decode_task_message(data)[3]),
            task,
            UnknownActor(task.actor, task.options),
        )
        self._record(job, event)

    # -- timer and recovery ---------------------------------------------------------
