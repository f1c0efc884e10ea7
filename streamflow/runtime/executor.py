"""Running task bodies: sync actors on the task threads, async ones on one event loop,
each with its time limit and the hooks around it; then its outcome goes to the recorder,
in the same thread (no hand-off: what keeps a chain step near a millisecond)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

import redis

from streamflow.logs import get_logger
from streamflow.model import codec
from streamflow.model.errors import DurabilityError, TimeLimitExceeded
from streamflow.model.events import TaskFailed, TaskSucceeded
from streamflow.model.messages import shard_of
from streamflow.runtime.context import reset_current, set_current
from streamflow.runtime.faults import crash_point
from streamflow.runtime.hooks import Hooks, TaskInfo, call_hooks
from streamflow.runtime.jobs import Job, Parked, in_context
from streamflow.runtime.leases import Leases
from streamflow.runtime.limits import TimeLimits
from streamflow.runtime.lone import Lone
from streamflow.runtime.observe import Observer
from streamflow.runtime.outcomes import failed, succeeded, too_old
from streamflow.runtime.pool import TaskPool
from streamflow.runtime.recorder import Recorder
from streamflow.store import scripts
from streamflow.store.connection import Store

log = get_logger(__name__)


class Pool(Protocol):
    """Where calls run (``TaskPool``; tests put in one that runs them step by step)."""

    def submit(self, fn: Callable[..., Any], *args: Any, priority: float = 0) -> None: ...

    def take(self, keep: Callable[[Callable[..., Any], tuple[Any, ...]], bool]) -> list[Any]: ...

    def shutdown(self, wait: bool) -> None: ...


class InFlight:
    """How many tasks a worker holds: running, waiting for a thread, or being recorded."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def __len__(self) -> int:
        return self._count

    def add(self) -> None:
        with self._changed:
            self._count += 1

    def done(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def room(self, limit: int, stopping: threading.Event) -> int:
        """Wait until fewer than ``limit`` are held (or ``stopping``); returns how many
        more may be taken."""
        with self._changed:
            while self._count >= limit and not stopping.is_set():
                self._changed.wait(0.5)
            return limit - self._count

    def wait_empty(self, timeout_s: float) -> bool:
        """Wait until none is held, at most ``timeout_s``; returns whether none is."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._count and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            return not self._count


class Executor:
    """Runs jobs and hands their outcomes to ``recorder``.

    Args:
        store: the Redis the jobs came from.
        name: this worker's consumer name.
        recorder: records and projects each outcome.
        leases: the messages held (a job's is released once its outcome is recorded).
        hooks: called around each body.
        concurrency: task threads.
        large_result_bytes: results encoding to more are stored out of line.
        max_result_bytes: a result encoding to more fails its task.
        pool: where calls run (default: ``concurrency`` task threads).
        observer: told as each body starts and each outcome is recorded.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        recorder: Recorder,
        leases: Leases,
        hooks: Sequence[Hooks],
        *,
        concurrency: int,
        large_result_bytes: int,
        max_result_bytes: int,
        pool: Pool | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.store = store
        self.observer = observer or Observer()
        self.name = name
        self.recorder = recorder
        self.leases = leases
        self.hooks = hooks
        self.large_result_bytes = large_result_bytes
        self.max_result_bytes = max_result_bytes
        self.lone: Lone | None = None
        """Ends lone tasks in one step (set by the worker)."""
        self._log = log.bind()  # resolved once: a lazy logger costs microseconds per call
        self.in_flight = InFlight()
        self.limits = TimeLimits()
        self.pool: Pool = pool or TaskPool(concurrency, "streamflow-task", self.ended)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start_loop(self) -> None:
        """Start the event loop async bodies run on, in its own thread."""
        self._loop = asyncio.new_event_loop()
        threading.Thread(
            target=self._loop.run_forever, name="streamflow-asyncio", daemon=True
        ).start()

    def take_unstarted(self) -> list[Job]:
        """Remove the jobs whose body has not started (no longer counted in flight)."""
        jobs = [args[0] for args in self.pool.take(lambda fn, args: fn != self._run_sync)]
        for _ in jobs:
            self.in_flight.done()
        return jobs

    def stop(self, wait: bool) -> None:
        """Drop what has not started; with ``wait``, join the task threads."""
        self.pool.shutdown(wait=wait)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    def track(self, fn: Callable[..., Any], *args: Any, priority: float = 0) -> None:
        """Run ``fn(*args)`` on a task thread (in ``priority`` order: see ``TaskPool``),
        counted in flight until it ends.

        Raises:
            RuntimeError: the pool was shut down (nothing runs).
        """
        self.in_flight.add()
        try:
            self.pool.submit(fn, *args, priority=priority)
        except RuntimeError:
            self.ended(None)
            raise

    def ended(self, error: BaseException | None) -> None:
        """A tracked call ended (with ``error`` if it raised)."""
        if isinstance(error, (redis.RedisError, DurabilityError)):
            # Redis went away or lost its replicas while the outcome was recorded: the
            # message stays pending, and the task runs again once its lease is over.
            self._log.warning("outcome_not_recorded", error=str(error))
            self.observer.redis_error("record")
        elif error is not None:
            self._log.error("worker_job_crashed", exc_info=error)
        self.in_flight.done()

    def run(self, job: Job) -> None:
        """Run a started job's body, then record its outcome."""
        job.started = time.monotonic()
        if job.actor.is_async and self._loop is not None:
            if self._given_back(job):
                return
            self._run_async(job)
        else:
            self.track(self._run_sync, job, priority=job.task.options.priority)

    def finish(self, job: Job, event: TaskSucceeded | TaskFailed) -> None:
        """Record the outcome (projected inline, the message acknowledged)."""
        try:
            where = {
                "workflow_id": job.workflow_id,
                "node": job.node,
                "attempt": job.attempt,
                "actor": job.actor.name,
            }
            duration_s = time.monotonic() - job.started if job.started else 0.0
            self.observer.task_ended(job, event, duration_s)
            duration_ms = round(duration_s * 1000, 3)
            ok = isinstance(event, TaskSucceeded)
            self._log.debug("task_finished", **where, ok=ok, duration_ms=duration_ms)
            if isinstance(event, TaskFailed):
                self._log.info(
                    "task_failed",
                    **where,
                    error=event.error["type"],
                    message=event.error["message"],
                    retry_delay_ms=event.retry_delay_ms,
                )
            if job.lone and self.lone is not None:
                self.lone.finish(job, event, lambda: self.recorder.record(job.outcome(event)))
            else:
                self.recorder.record(job.outcome(event))
        finally:
            self.leases.release(job)
            self.observer.task_recorded(job)

    def _arguments(self, job: Job) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        if job.args_blob:
            args, kwargs = codec.decode(job.args_blob)
        return [*args, *job.inputs], kwargs

    def _given_back(self, job: Job) -> bool:
        """A message taken over from a consumer that beats again (it was paused, not
        dead) goes back to it, unrun: it still runs the body and keeps its claim. One
        no longer ours (its attempt ended meanwhile) is not run either."""
        if not job.taken_from:
            return False
        call = scripts.give_back(
            queue=job.queue_key,
            beats=self.store.keys.beats(shard_of(job.workflow_id)),
            msg_id=job.msg_id,
            owner=job.taken_from,
            taken_ms=job.taken_ms,
            consumer=self.name,
        )
        answer = int(self.store.scripts.run(call))
        if not answer:
            return False
        self.leases.release(job)
        self._log.info(
            "message_given_back" if answer == 1 else "message_no_longer_held",
            workflow_id=job.workflow_id,
            node=job.node,
            attempt=job.attempt,
            owner=job.taken_from,
        )
        return True

    def _run_sync(self, job: Job) -> None:
        if self._given_back(job):
            return
        self.observer.task_started(job)
        old = too_old(job)
        if old is not None:
            self.finish(job, failed(job, old))
            return
        token = set_current(job.context)
        try:
            args, kwargs = self._arguments(job)
            self._before(job, args, kwargs)
            limit_ms = job.task.options.time_limit_ms
            result = self.limits.run(limit_ms, job.actor.fn, *args, **kwargs)
        except (Exception, TimeLimitExceeded) as exc:
            reset_current(token)
            if isinstance(exc, TimeLimitExceeded) and not str(exc):
                limit = job.task.options.time_limit_ms
                exc = TimeLimitExceeded(f"{job.actor.name} ran longer than {limit} ms")
            self._after(job, exception=exc)
            self.finish(job, failed(job, exc))
        else:
            reset_current(token)
            if isinstance(result, Parked):
                self._park(job, result)
                return
            self._after(job, result=result)
            crash_point("worker.after_run_before_record")
            self.finish(job, self._succeeded(job, result))

    def _park(self, job: Job, parked: Parked) -> None:
        """End a run without an outcome (``Parked``): the message is acknowledged, then
        its last look runs."""
        try:
            self._log.debug("task_parked", workflow_id=job.workflow_id, node=job.node)
            self.store.ack(job.queue_key, job.msg_id)
            if parked.then is not None:
                parked.then()
        except Exception:  # the sweep sends the message again if need be
            self._log.exception("task_park_failed", workflow_id=job.workflow_id, node=job.node)
        finally:
            self.leases.release(job)
            self.observer.task_recorded(job)

    def _run_async(self, job: Job) -> None:
        assert self._loop is not None
        self.observer.task_started(job)
        old = too_old(job)
        if old is not None:
            self.track(self.finish, job, failed(job, old))
            return
        try:
            args, kwargs = self._arguments(job)
            self._before(job, args, kwargs)
            coroutine = in_context(job, job.actor.fn(*args, **kwargs))
        except Exception as exc:  # e.g. wrong arguments: a failure of the task, recorded
            self.track(self.finish, job, failed(job, exc))
            return
        self.in_flight.add()
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        job.future = future

        def done(f: Future[Any]) -> None:
            try:
                self.track(self._complete_async, job, f)
            finally:
                self.in_flight.done()

        future.add_done_callback(done)

    def _complete_async(self, job: Job, future: Future[Any]) -> None:
        # The failure is taken, not raised here: raised, its traceback would hold this
        # frame, which holds the future, which holds the failure (a cycle that keeps
        # both alive until a garbage collection); the finished future is let go too.
        job.future = None
        error = None if future.cancelled() else future.exception()
        if isinstance(error, Exception | TimeLimitExceeded):
            self._after(job, exception=error)
            self.finish(job, failed(job, error))
            return
        result = future.result()  # (raises anything else, as before)
        self._after(job, result=result)
        self.finish(job, self._succeeded(job, result))

    def _succeeded(self, job: Job, result: Any) -> TaskSucceeded | TaskFailed:
        return succeeded(
            job, result, large_bytes=self.large_result_bytes, max_bytes=self.max_result_bytes
        )

    def _before(self, job: Job, args: list[Any], kwargs: dict[str, Any]) -> None:
        if self.hooks:
            job.info = TaskInfo(
                workflow_id=job.workflow_id,
                node=job.node,
                attempt=job.attempt,
                actor=job.actor.name,
                args=args,
                kwargs=kwargs,
            )
            call_hooks(self.hooks, "before_task", job.info)

    def _after(self, job: Job, **outcome: Any) -> None:
        if self.hooks and job.info is not None:
            call_hooks(self.hooks, "after_task", job.info, **outcome)
