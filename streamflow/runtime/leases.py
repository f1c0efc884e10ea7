"""The messages a worker holds (its leases): renewed while held, handed back on stop."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from streamflow.runtime.jobs import Job
from streamflow.store import scripts
from streamflow.store.connection import Store

HAND_BACK_IDLE_MS = 10**12
"""Idle time given to a message handed back: any lease has run out."""


class Leases:
    """The jobs whose messages this consumer holds, by (queue, message id)."""

    def __init__(self, store: Store, consumer: str) -> None:
        self._store = store
        self._consumer = consumer
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], Job] = {}

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, job: Job) -> None:
        with self._lock:
            self._held[(job.queue_key, job.msg_id)] = job

    def release(self, job: Job) -> None:
        with self._lock:
            self._held.pop((job.queue_key, job.msg_id), None)

    def held(self) -> list[Job]:
        with self._lock:
            return list(self._held.values())

    def renew(self, jobs: Sequence[Job], idle_ms: int = 0) -> None:
        """Renew the leases of ``jobs`` still ours (with a large ``idle_ms``, hand them
        back), in one round trip.

        Raises:
            redis.RedisError: Redis is unreachable, or a script failed.
        """
        by_queue: dict[str, list[str]] = {}
        for job in jobs:
            by_queue.setdefault(job.queue_key, []).append(job.msg_id)
        calls = [
            scripts.renew(queue=queue, consumer=self._consumer, idle_ms=idle_ms, msg_ids=ids)
            for queue, ids in by_queue.items()
        ]
        for result in self._store.scripts.batch(calls):
            if isinstance(result, Exception):
                raise result

    def hand_back(self) -> int:
        """Hand every held message back (for a stop past its grace period); returns how
        many."""
        jobs = self.held()
        if jobs:
            self.renew(jobs, idle_ms=HAND_BACK_IDLE_MS)
        return len(jobs)
