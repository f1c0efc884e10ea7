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

_SLOTS = {"succeeded": 0, "retried": 1, "failed": 2}
_RUN_MS, _WAIT_MS, _RUN_BUCKETS = 3, 4, 5
_WAIT_BUCKETS = _RUN_BUCKETS + len(stats.BUCKET_NAMES)
_NAMES = (
    "succeeded",
    "retried",
    "failed",
    "run_ms",
    "wait_ms",
    *(f"run{le}" for le in stats.BUCKET_NAMES),
    *(f"wait{le}" for le in stats.BUCKET_NAMES),
)
"""Each slot's counter name (``store.stats``)."""


class Tally(Observer):
    """Counts in memory (a row of numbers per queue and actor); ``flush`` adds them
    into Redis."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tasks: dict[tuple[str, str], list[int]] = {}
        self._workflows: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def task_ended(self, job: Job, event: TaskSucceeded | TaskFailed, duration_s: float) -> None:
        run_ms = duration_s * 1000
        wait_ms = waited_s(job) * 1000
        key = (job.task.options.queue, job.actor.name)
        with self._lock:
            row = self._tasks.get(key)
            if row is None:
                row = self._tasks[key] = [0] * len(_NAMES)
            row[_SLOTS[outcome_of(event)]] += 1
            row[_RUN_MS] += round(run_ms)
            row[_WAIT_MS] += round(wait_ms)
            row[_RUN_BUCKETS + stats.bucket_index(run_ms)] += 1
            row[_WAIT_BUCKETS + stats.bucket_index(wait_ms)] += 1

    def workflow_ended(self, workflow_id: str, status: str) -> None:
        with self._lock:
            self._workflows[status] += 1

    def flush(self, now_ms: int) -> None:
        """Add what was counted since the last flush into the minute of ``now_ms``
        (Redis time). Counts that could not be written are kept for the next flush.

        Raises:
            redis.RedisError: Redis did not take them.
        """
        with self._lock:
            tasks, self._tasks = self._tasks, {}
            workflows, self._workflows = self._workflows, collections.Counter()
        counts = {
            stats.task_field(queue, actor, name): n
            for (queue, actor), row in tasks.items()
            for name, n in zip(_NAMES, row, strict=True)
            if n
        }
        counts.update((stats.workflow_field(status), n) for status, n in workflows.items())
        try:
            stats.add(self.store.client, self.store.keys, now_ms // 60_000, counts)
        except BaseException:
            self._keep(tasks, workflows)
            raise

    def _keep(
        self, tasks: dict[tuple[str, str], list[int]], workflows: collections.Counter[str]
    ) -> None:
        """Put counts not written back, for the next flush."""
        with self._lock:
            for key, row in tasks.items():
                mine = self._tasks.setdefault(key, [0] * len(_NAMES))
                mine[:] = [a + b for a, b in zip(mine, row, strict=True)]
            self._workflows.update(workflows)
