"""Stats kept in Redis, so that ``streamflow stats`` (and the dashboard) show throughput,
failures and latency without Prometheus: each worker counts what it did and adds its
counts, every couple of seconds, into one hash per minute of the Redis clock
(``keys.stats``), kept for ``KEEP_S``.

A hash's fields are ``task<TAB>queue<TAB>actor<TAB>counter`` and
``workflow<TAB>status``. Task counters: ``succeeded``, ``failed`` (for good),
``retried``, ``run_ms`` and ``wait_ms`` (sums), and ``run<le>`` / ``wait<le>``: how many
ran (waited in their queue) at most ``le`` ms, per bucket of ``BUCKETS_MS``, the last
one unbounded, to read percentiles from.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from streamflow.store.keys import Keys

KEEP_S = 2 * 3600
"""How long a minute's counts are kept."""
BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000)
"""Upper bounds of the latency buckets; past the last, a bucket without bound (``inf``)."""
BUCKET_NAMES = (*map(str, BUCKETS_MS), "inf")
"""Each bucket's name, in order."""
OUTCOMES = ("succeeded", "retried", "failed")
SEP = "\t"


def bucket_index(ms: float) -> int:
    """The position of the bucket ``ms`` falls in."""
    return bisect.bisect_left(BUCKETS_MS, ms)


def bucket(ms: float) -> str:
    """The name of the bucket ``ms`` falls in."""
    return BUCKET_NAMES[bucket_index(ms)]


def task_field(queue: str, actor: str, counter: str) -> str:
    return SEP.join(("task", queue, actor, counter))


def workflow_field(status: str) -> str:
    return SEP.join(("workflow", status))


def add(client: Any, keys: Keys, minute: int, counts: Mapping[str, int]) -> None:
    """Add ``counts`` (field -> count) into ``minute``'s hash, in one round trip."""
    if not counts:
        return
    key = keys.stats(minute)
    pipe = client.pipeline(transaction=False)
    for field, count in counts.items():
        pipe.hincrby(key, field, count)
    pipe.expire(key, KEEP_S)
    pipe.execute()


@dataclasses.dataclass(slots=True)
class TaskStats:
    """What the workers did for one queue and actor (or a total) over a window."""

    queue: str
    actor: str
    succeeded: int = 0
    retried: int = 0
    failed: int = 0
    run_ms: int = 0
    wait_ms: int = 0
    run_buckets: dict[str, int] = dataclasses.field(default_factory=dict)
    wait_buckets: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def attempts(self) -> int:
        """Attempts that ended: succeeded, retried or failed."""
        return self.succeeded + self.retried + self.failed

    def mean_run_ms(self) -> float | None:
        return self.run_ms / self.attempts if self.attempts else None

    def run_percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0-1) of run times, as its bucket's upper bound in ms."""
        return _percentile(self.run_buckets, q)

    def wait_percentile(self, q: float) -> float | None:
        """The ``q`` quantile of the time messages waited in their queue, likewise."""
        return _percentile(self.wait_buckets, q)

    def merge(self, counter: str, count: int) -> None:
        """Add ``count`` to ``counter`` (a field's last part)."""
        if counter in OUTCOMES or counter in ("run_ms", "wait_ms"):
            setattr(self, counter, getattr(self, counter) + count)
        elif counter.startswith("run"):
            _increase(self.run_buckets, counter.removeprefix("run"), count)
        elif counter.startswith("wait"):
            _increase(self.wait_buckets, counter.removeprefix("wait"), count)


def _increase(counts: dict[str, int], name: str, by: int) -> None:
    counts[name] = counts.get(name, 0) + by


def _percentile(buckets: Mapping[str, int], q: float) -> float | None:
    total = sum(buckets.values())
    if not total:
        return None
    seen = 0
    for le in BUCKET_NAMES:
        seen += buckets.get(le, 0)
        if seen >= q * total:
            return float(le)
    return float("inf")


@dataclasses.dataclass(slots=True)
class Window:
    """The stats of the last ``minutes`` minutes (the current one included, so far)."""

    minutes: int
    seconds: float
    """How long the window is: the full minutes before and the current one so far."""
    tasks: list[TaskStats]
    """Per queue and actor, busiest first."""
    total: TaskStats
    workflows: dict[str, int]
    """Workflows whose end workers recorded, by status."""


def read(client: Any, keys: Keys, now_ms: int, minutes: int) -> Window:
    """The stats of the ``minutes`` minutes up to ``now_ms`` (Redis time)."""
    if minutes < 1:
        raise ValueError(f"the window must be at least 1 minute (got {minutes!r})")
    current = now_ms // 60_000
    pipe = client.pipeline(transaction=False)
    for minute in range(current - minutes + 1, current + 1):
        pipe.hgetall(keys.stats(minute))
    hashes: list[dict[Any, Any]] = pipe.execute()
    tasks: dict[tuple[str, str], TaskStats] = {}
    total = TaskStats(queue="", actor="")
    workflows: dict[str, int] = {}
    for field, value in _fields(hashes):
        parts = field.split(SEP)
        if parts[0] == "workflow" and len(parts) == 2:
            workflows[parts[1]] = workflows.get(parts[1], 0) + value
        elif parts[0] == "task" and len(parts) == 4:
            _, queue, actor, counter = parts
            stats = tasks.setdefault((queue, actor), TaskStats(queue=queue, actor=actor))
            stats.merge(counter, value)
            total.merge(counter, value)
    seconds = (minutes - 1) * 60 + (now_ms % 60_000) / 1000
    busiest = sorted(tasks.values(), key=lambda s: (-s.attempts, s.queue, s.actor))
    return Window(minutes, max(seconds, 1.0), busiest, total, workflows)


def _fields(hashes: Iterable[Mapping[Any, Any]]) -> Iterable[tuple[str, int]]:
    for fields in hashes:
        for field, value in fields.items():
            name = field.decode() if isinstance(field, bytes) else str(field)
            try:
                yield name, int(value)
            except ValueError:
                continue  # not a counter of ours
