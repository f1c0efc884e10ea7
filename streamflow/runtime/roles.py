"""The worker's background roles: the watch (time limits, lease renewal, cancellation),
the timer (delays, retries, wake-ups, sweeps) and the recovery projector. Each runs in
a thread of its Worker."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import redis

from streamflow.model.errors import DecodeError, TimeLimitExceeded
from streamflow.model.messages import decode_wake
from streamflow.runtime.faults import crash_point
from streamflow.runtime.jobs import Job, raise_in_thread
from streamflow.runtime.timer import move_due, sweep_expired
from streamflow.store.keys import PROJECTOR_GROUP, WORKER_GROUP

if TYPE_CHECKING:
    from streamflow.runtime.worker import Worker


class Outage:
    """Redis reachability, shared by the worker's loops: one log line per change (down,
    back), and a capped backoff while down."""

    def __init__(self, log: Any) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._backoff_s = 0.0

    def down(self, exc: BaseException) -> float:
        """Note a failure; returns how long to wait before trying again."""
        with self._lock:
            if not self._backoff_s:
                self._log.error("redis_unreachable", error=str(exc))
            self._backoff_s = min(max(self._backoff_s * 2, 0.1), 5.0)
            return self._backoff_s

    def up(self) -> None:
        """Note a success (logs once if Redis was down)."""
        if self._backoff_s:
            with self._lock:
                if self._backoff_s:
                    self._log.warning("redis_reachable_again")
                    self._backoff_s = 0.0


def run_watch(worker: Worker) -> None:
    """Enforce sync time limits, renew leases, and tell running tasks of cancellation."""
    last_renew = last_check = 0.0
    while True:
        if worker._stopping.is_set():
            if not worker._inflight or worker._handing_back:
                return
            time.sleep(0.05)  # shutting down: keep renewing what is still in flight
        else:
            worker._stopping.wait(0.05)
        now = time.monotonic()
        with worker._watch_lock:
            for ident, deadline in list(worker._deadlines.items()):
                if now >= deadline:
                    del worker._deadlines[ident]
                    raise_in_thread(ident, TimeLimitExceeded)
            leased = list(worker._leases.values())
        try:
            if now - last_renew > worker.lease_ms / 3000:
                last_renew = now
                renew(worker, leased)
            if now - last_check > 0.5:
                last_check = now
                check_cancelled(worker, leased)
        except redis.RedisError as exc:
            worker._outage.down(exc)


def renew(worker: Worker, jobs: list[Job], idle_ms: int = 0) -> None:
    """Renew the leases of ``jobs`` (or, with a large ``idle_ms``, hand them back)."""
    by_queue: dict[str, list[str]] = {}
    for job in jobs:
        by_queue.setdefault(job.queue_key, []).append(job.msg_id)
    calls = [
        ("renew", [queue], [WORKER_GROUP, worker.consumer, idle_ms, *ids])
        for queue, ids in by_queue.items()
    ]
    for result in worker.scripts.batch(worker.client, calls):
        if isinstance(result, Exception):
            raise result


def check_cancelled(worker: Worker, jobs: list[Job]) -> None:
    running = [j for j in jobs if j.context is not None and not j.context.cancelled]
    if not running:
        return
    pipe = worker.client.pipeline(transaction=False)
    for job in running:
        pipe.hget(worker.keys.idx(job.workflow_id), "st")
        pipe.exists(worker.keys.archive(job.workflow_id))
    replies = pipe.execute()
    for job, status, archived in zip(running, replies[::2], replies[1::2], strict=True):
        if status in (b"cancelled", b"failed", b"completed") or archived:
            assert job.context is not None
            job.context._cancelled = True
            if job.future is not None:
                job.future.cancel()


# -- poison ---------------------------------------------------------------------


def run_timer(worker: Worker) -> None:
    last_sweep = 0.0
    while not worker._stopping.wait(0.05):
        try:
            move_due(worker.client, worker.scripts, worker.keys, worker.shards, worker.queues)
            if time.monotonic() - last_sweep > worker.sweep_interval_s:
                last_sweep = time.monotonic()
                removed = sweep_expired(worker.client, worker.scripts, worker.keys, worker.shards)
                if removed:
                    worker._log.info("expired_workflows_removed", count=removed)
                worker._stuck.run(worker.shards)
        except redis.RedisError as exc:
            worker._stopping.wait(worker._outage.down(exc))


def run_recovery(worker: Worker) -> None:
    wake_keys = [worker.keys.wake(s) for s in worker.shards]
    last_claim = 0.0
    while not worker._stopping.is_set():
        try:
            entries: list[tuple[str, str, bytes]] = []
            if time.monotonic() - last_claim > min(worker.lease_ms / 2000, 1.0):
                last_claim = time.monotonic()
                for key in wake_keys:
                    claim: Any = worker.client.xautoclaim(
                        key, PROJECTOR_GROUP, worker.consumer, worker.lease_ms, "0-0", count=10
                    )
                    entries += [(key, i.decode(), f.get(b"m", b"")) for i, f in claim[1] if f]
            reply: Any = worker.client.xreadgroup(
                PROJECTOR_GROUP,
                worker.consumer,
                dict.fromkeys(wake_keys, ">"),
                count=10,
                block=worker.block_ms,
            )
            for stream, items in reply or []:
                entries += [(stream.decode(), i.decode(), f.get(b"m", b"")) for i, f in items]
            for key, msg_id, data in entries:
                recover(worker, key, msg_id, data)
        except redis.RedisError as exc:
            worker._stopping.wait(worker._outage.down(exc))
        except Exception:
            # A bad wake-up must not end recovery for the whole deployment; it stays
            # pending and is retried after the lease.
            worker._log.exception("recovery_crashed")
            worker._stopping.wait(1.0)


def recover(worker: Worker, wake_key: str, msg_id: str, data: bytes) -> None:
    try:
        workflow_id, tag = decode_wake(data)
    except DecodeError as exc:
        worker._dead_letter(wake_key, msg_id, data, f"undecodable wake-up: {exc}")
    else:
        worker._log.info("recovery_projection", workflow_id=workflow_id, tag=tag)
        worker.projector.project(workflow_id, None)
        crash_point("recovery.after_project_before_ack")
    pipe = worker.client.pipeline(transaction=False)
    pipe.xack(wake_key, PROJECTOR_GROUP, msg_id)
    pipe.xdel(wake_key, msg_id)
    pipe.execute()
