"""The worker: its parts wired together, started and stopped.

One ``Worker`` runs every role by default: the consumer (task messages read in
batches), the executor (sync actors on task threads, async ones on an event loop; each
outcome recorded and projected inline by the recorder), the watch (time limits, leases,
cancellation), the timer (delayed tasks, retries, wake-ups, retention, the stuck sweep)
and a recovery projector on the wake-up streams.
"""

from __future__ import annotations

import collections
import math
import os
import signal
import socket
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from streamflow.logs import get_logger
from streamflow.model.options import to_ms
from streamflow.model.schema import PROJECTOR_GROUP, WORKER_GROUP
from streamflow.runtime.consumer import Consumer, Settings
from streamflow.runtime.executor import Executor, Pool
from streamflow.runtime.faults import armed
from streamflow.runtime.heartbeat import Heartbeat
from streamflow.runtime.host import Host
from streamflow.runtime.jobs import Runnable
from streamflow.runtime.leases import HAND_BACK_IDLE_MS, Leases
from streamflow.runtime.lone import Lone
from streamflow.runtime.outage import Outage
from streamflow.runtime.preflight import check_server
from streamflow.runtime.recorder import Recorder
from streamflow.runtime.recovery import Recovery
from streamflow.runtime.roles import Role
from streamflow.runtime.roster import Roster
from streamflow.runtime.scheduler import Scheduler
from streamflow.runtime.sweep import StuckSweep
from streamflow.runtime.timer import Timer
from streamflow.runtime.watch import Watch
from streamflow.store.plan import run

log = get_logger(__name__)


def pinned(shards: Sequence[int] | None, count: int) -> tuple[int, ...]:
    """The shards a worker serves: ``shards`` (checked against ``count``), else all.

    Raises:
        ValueError: no shard, or one outside ``0 .. count - 1``.
    """
    if shards is None:
        return tuple(range(count))
    chosen = tuple(sorted(set(shards)))
    wrong = [s for s in chosen if not isinstance(s, int) or not 0 <= s < count]
    if wrong or not chosen:
        raise ValueError(
            f"shards must be some of 0..{count - 1} (the App has {count}); got {list(shards)!r}"
        )
    return chosen


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
        block_ms: how long one read of the queues waits for messages; on one Redis,
            shorter than its connection's socket timeout (5 s by default on redis-py 8).
        grace_s: on stop, how long in-flight tasks may take to finish.
        sweep_interval_s: how often the timer removes workflows past their retention.
        max_deliveries: deliveries of one attempt (counted from its TaskStarted events)
            after which it fails as poison and its bytes go to the dead-letter stream.
        stuck_after_s: an active workflow with no new event for this long is swept:
            projected again, and its lost task messages re-sent.
        speculate: when a task is the only one of its workflow in flight, make the
            decisions that follow its outcome before recording it and send both in one
            round trip (the apply script checks the guess; a wrong one costs nothing).
        heartbeat_s: how often this process beats (tells it is alive).
        dead_after_s: a consumer that stayed silent while this one beat for this long is
            dead: what it held is taken over at once, not after its lease.
        pool: where task calls run (default: ``concurrency`` threads; for tests).
        shards: the shards this worker serves (default: all). Pinning workers to
            shards (on a cluster, to the shards of one master, say) is the operator's
            choice: every shard needs a worker that serves it.
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
        heartbeat_s: float = 0.5,
        dead_after_s: float = 2.0,
        pool: Pool | None = None,
        shards: Sequence[int] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1 (got {concurrency!r})")
        self.store = store = app.store
        self.projector = app.projector
        # A live view: actors registered after the worker was made are run too.
        live: Any = collections.ChainMap  # read only here (typed for mutable maps)
        self.actors: Mapping[str, Runnable] = live(app.actors, app.builtins)
        self.queues = tuple(queues or sorted({a.options.queue for a in app.actors.values()}))
        if not self.queues and tasks:
            raise ValueError("the worker has no queue to read (no actor registered, none given)")
        self.shards = pinned(shards, store.shards)
        self.name = consumer or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.concurrency = concurrency
        self.lease_ms = lease_ms
        self.grace_s = grace_s
        self.roles = [
            r for r, on in (("tasks", tasks), ("timer", timer), ("recovery", recovery)) if on
        ]
        self._log = log.bind(consumer=self.name)
        self._outage = Outage(self._log)
        self._stopping = threading.Event()
        self._released = threading.Event()
        self._regrouping = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._claimed = threading.Lock()
        """Held from the first run on: a worker runs once (its consumer's reads serve
        one thread)."""

        shared = {"stopping": self._stopping, "outage": self._outage, "log": self._log}
        self.heartbeat = Heartbeat(
            store,
            self.shards,
            name=self.name,
            interval_s=heartbeat_s,
            misses=max(1, math.ceil(dead_after_s / heartbeat_s)),
            released=self._released,
            roster=Roster(
                store,
                name=self.name,
                queues=self.queues,
                shards=len(self.shards),
                concurrency=concurrency,
                in_flight=lambda: len(self.executor.in_flight),
                tally=app.tally,
            ),
            **shared,
        )
        self.leases = Leases(store, self.name)
        # Decisions made ahead of an outcome skip the windows crash-point tests aim at.
        self.recorder = Recorder(self.projector, speculate=speculate and not armed())
        self.executor = Executor(
            store,
            self.name,
            self.recorder,
            self.leases,
            app.hooks,
            concurrency=concurrency,
            large_result_bytes=app.large_result_bytes,
            max_result_bytes=app.max_result_bytes,
            pool=pool,
            observer=app.observers,
        )
        settings = Settings(
            prefetch=concurrency * 4,
            lease_ms=lease_ms,
            block_ms=block_ms,
            max_deliveries=max_deliveries,
            max_unknown_deliveries=max_unknown_deliveries,
        )
        self.consumer = Consumer(
            self.name,
            {store.keys.queue(s, q): s for s in self.shards for q in self.queues},
            store=store,
            projector=self.projector,
            actors=self.actors,
            executor=self.executor,
            leases=self.leases,
            recorder=self.recorder,
            settings=settings,
            heartbeat=self.heartbeat,
            outage=self._outage,
            start_child=app.start_child,
        )
        self.executor.lone = Lone(
            store, self.name, ended=self._ended, unreadable=self.consumer.unreadable
        )
        self.watch = Watch(
            store,
            self.leases,
            self.executor.limits,
            self.executor.lone,
            lease_ms=lease_ms,
            released=self._released,
            **shared,
        )
        self.timer = Timer(
            store,
            StuckSweep(store, self.projector, stuck_after_ms=to_ms(stuck_after_s, "stuck_after_s")),
            self.shards,
            self.queues,
            sweep_interval_s=sweep_interval_s,
            **shared,
        )
        self.scheduler = Scheduler(store, app.schedule_specs, app.fire_schedule, **shared)
        self.recovery = Recovery(
            store,
            self.projector,
            self.shards,
            name=self.name,
            lease_ms=lease_ms,
            block_ms=block_ms,
            heartbeat=self.heartbeat,
            **shared,
        )

    def _ended(self, workflow_id: str, status: str) -> None:
        """A workflow ended here without a projection (a lone task's, in one step)."""
        if self.projector.after_workflow is not None:
            self.projector.after_workflow(workflow_id, status)

    # -- lifecycle ------------------------------------------------------------------

    def run(self) -> None:
        """Run until ``stop`` (or SIGTERM/SIGINT when called from the main thread).

        Raises:
            RuntimeError: this worker ran or runs already (a worker runs once).
        """
        self._claim()
        self._run()

    def _claim(self) -> None:
        if not self._claimed.acquire(blocking=False):
            raise RuntimeError(
                f"worker {self.name} was started already: a worker runs once "
                "(`with worker:` starts one that is not running yet)"
            )

    def _run(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stopping.set())
        roles = self._setup()
        if self._stopping.is_set() and not roles:  # stopped before Redis ever answered
            self._log.info("worker_stopped", unfinished=0)
            return
        self._log.info(
            "worker_started", queues=self.queues, concurrency=self.concurrency, roles=self.roles
        )
        try:
            if "tasks" in self.roles:
                self.consumer.run(self._stopping, self._regroup)
            else:
                self._stopping.wait()
        finally:
            self._shutdown(roles)

    def start(self) -> Worker:
        """Run in a background thread (for tests and embedding); returns self.

        Raises:
            RuntimeError: this worker ran or runs already (a worker runs once).
        """
        self._claim()
        thread = threading.Thread(target=self._run, name="streamflow-worker", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop fetching, let in-flight work finish (up to ``timeout`` s), then return."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)

    def __enter__(self) -> Worker:
        """Start this worker, unless ``start`` did already."""
        return self if self._threads else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def create_groups(self) -> int:
        """Create the consumer groups this worker reads with (if they do not exist);
        returns how many were missing."""
        created = 0
        for key in self.consumer.queue_keys:
            created += self._create_group(key, WORKER_GROUP)
        for key in self.recovery.wake_keys:
            created += self._create_group(key, PROJECTOR_GROUP)
        return created

    def _regroup(self) -> None:
        """Consumer groups are missing: Redis lost its data. Said loudly, created again;
        what it held is gone with it (its logs too), new work runs at once."""
        with self._regrouping:
            missing = self.create_groups()
        if missing:  # once per loss, whichever part of the worker noticed it first
            self.store.lost("consumer groups", recreated=missing)

    def _setup(self) -> list[Role]:
        # Redis may not be up yet: wait for it (saying so once), as the roles do later.
        while True:
            try:
                check_server(self.store.client, self._log)
                run(self.store.shards_plan(), self.store.execute)
                self.create_groups()
                self.heartbeat.beat()
                break
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self._stopping.wait(self._outage.down(exc)):
                    return []
        self._outage.up()
        if any(a.is_async for a in self.actors.values()):
            self.executor.start_loop()
        roles: list[Role] = [self.heartbeat]
        if "timer" in self.roles:
            roles.append(self.timer)
            if self.scheduler.specs:
                roles.append(self.scheduler)
        if "tasks" in self.roles:
            roles.append(self.watch)
        if "recovery" in self.roles:
            roles.append(self.recovery)
        for role in roles:
            role.regroup = self._regroup
            role.observer = self.executor.observer
            role.start()
        return roles

    def _create_group(self, key: str, group: str) -> bool:
        try:
            self.store.client.xgroup_create(key, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return False
        return True

    def _shutdown(self, roles: list[Role]) -> None:
        in_flight = self.executor.in_flight
        # Fetched, but not started: back at once, for another worker to take now.
        unstarted = self.executor.take_unstarted()
        if unstarted:
            try:
                self.leases.renew(unstarted, idle_ms=HAND_BACK_IDLE_MS)
                self._log.info("unstarted_handed_back", count=len(unstarted))
            except redis.RedisError as exc:
                self._log.warning("lease_hand_back_failed", error=str(exc))
            for job in unstarted:
                self.leases.release(job)
        finished = in_flight.wait_empty(self.grace_s)
        # The watch renewed the leases of what was still running; from here, what is
        # left is handed back below.
        self._released.set()
        self.executor.stop(wait=finished)
        for role in roles:
            role.join(5)
        self.consumer.close()
        self.recovery.close()
        self.timer.close()
        try:
            # Past the grace period: let other workers take these at once, rather than
            # after the lease (a body still running here may finish; first outcome wins).
            handed = self.leases.hand_back()
            if handed:
                self._log.info("leases_handed_back", count=handed)
            self.heartbeat.leave()
            self.consumer.leave()
        except redis.RedisError as exc:
            self._log.warning("lease_hand_back_failed", error=str(exc))
        self._log.info("worker_stopped", unfinished=len(in_flight))
