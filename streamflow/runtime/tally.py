"""A worker's counts of what it did, added into Redis every couple of seconds
(``store.stats``) for ``streamflow stats``: tasks succeeded, retried and failed, their
run times and how long their messages waited, per queue and actor; workflows ended."""

from __future__ import annotations

import collections
import threading

from streamflow.model.events import TaskFailed, TaskSucceeded
from streamflow.runtime.jobs import Job
from streamflow.runtime.observe import Observer, outcome_of, waited_s
from streamflow.store import stats
from streamflow.store.connection import Store


class Tally(Observer):
    """Counts in memory; ``flush`` adds them into Redis."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def task_ended(self, job: Job, event: TaskSucceeded | TaskFailed, duration_s: float) -> None:
        queue, actor = job.task.options.queue, job.actor.name
        run_ms = duration_s * 1000
        wait_ms = waited_s(job) * 1000
        with self._lock:
            counts = self._counts
            counts[stats.task_field(queue, actor, outcome_of(event))] += 1
            counts[stats.task_field(queue, actor, "run_ms")] += round(run_ms)
            counts[stats.task_field(queue, actor, "run" + stats.bucket(run_ms))] += 1
            counts[stats.task_field(queue, actor, "wait_ms")] += round(wait_ms)
            counts[stats.task_field(queue, actor, "wait" + stats.bucket(wait_ms))] += 1

    def workflow_ended(self, workflow_id: str, status: str) -> None:
        with self._lock:
            self._counts[stats.workflow_field(status)] += 1

    def flush(self, now_ms: int) -> None:
        """Add what was counted since the last flush into the minute of ``now_ms``
        (Redis time). Counts that could not be written are kept for the next flush.

        Raises:
            redis.RedisError: Redis did not take them.
        """
        with self._lock:
            counts, self._counts = self._counts, collections.Counter()
        try:
            stats.add(self.store.client, self.store.keys, now_ms // 60_000, counts)
        except BaseException:
            with self._lock:
                self._counts.update(counts)
            raise
