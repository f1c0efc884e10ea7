"""Prometheus metrics, the extra ``streamflow[metrics]`` (prometheus-client).

``streamflow worker --metrics-port P`` serves them on ``/metrics``; in code,
``instrument(app)`` registers them for a process's App and ``serve(app, port)`` also
starts the endpoint. What is counted (Prometheus's naming conventions: base units,
``_total`` counters):

- tasks started, succeeded, retried and failed (for good), by actor and queue; how long
  bodies ran, and how long messages waited in their queue before they started, as
  histograms; the tasks running now;
- workflows submitted by this process, and ended here by status; messages it
  dead-lettered, by queue;
- Redis errors it caught and rode out, by the part that met them (a role's name, the
  scripts' pipelines, an outcome's recording), and the round trip of the pipelines that
  run the scripts, by script;
- read from Redis at each scrape (at most every ``QUEUE_READ_S``): per queue, its
  stream's length, the messages waiting (the consumer group's lag), in flight, the age of
  the oldest in flight, delayed, parked, and dead letters; and the worker processes on
  the roster by state (live, silent, stopped).

``Metrics`` is told in the thread that does the work, so each of its methods only adds
to a counter or a histogram; what Redis holds is read when scraped, not as work happens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from streamflow.logs import get_logger
from streamflow.model.events import TaskFailed, TaskSucceeded
from streamflow.runtime.jobs import Job
from streamflow.runtime.observe import Observer, outcome_of, waited_s
from streamflow.store import roster
from streamflow.store.queues import QueueStats, queue_stats, totals
from streamflow.store.scripts import Call

if TYPE_CHECKING:
    from streamflow.api.app import App

try:
    import prometheus_client
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector, CollectorRegistry
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "streamflow's metrics need prometheus-client: pip install 'streamflow[metrics]'"
    ) from exc

log = get_logger(__name__)

SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
"""Histogram buckets of task run and queue wait times (s)."""
SCRIPT_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
"""Histogram buckets of script round trips (s)."""
QUEUE_READ_S = 5.0
"""The gauges of what Redis holds (queues, the roster) are read at most this often
(scrapes in between reuse them)."""

T = TypeVar("T")


class Metrics(Observer):
    """The metrics of one process, in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        task = ("actor", "queue")
        self.registry = registry
        self.started = prometheus_client.Counter(
            "streamflow_tasks_started", "Task attempts started.", task, registry=registry
        )
        self.ended = {
            outcome: prometheus_client.Counter(
                f"streamflow_tasks_{outcome}", says, task, registry=registry
            )
            for outcome, says in (
                ("succeeded", "Task attempts that succeeded."),
                ("retried", "Task attempts that failed and are retried."),
                ("failed", "Task attempts that failed for good (no retry left)."),
            )
        }
        self.running = prometheus_client.Gauge(
            "streamflow_tasks_running", "Task bodies running now.", registry=registry
        )
        self.duration = prometheus_client.Histogram(
            "streamflow_task_duration_seconds",
            "How long task bodies ran.",
            task,
            buckets=SECONDS,
            registry=registry,
        )
        self.latency = prometheus_client.Histogram(
            "streamflow_task_queue_latency_seconds",
            "How long task messages waited in their queue before they started.",
            task,
            buckets=SECONDS,
            registry=registry,
        )
        self.submitted = prometheus_client.Counter(
            "streamflow_workflows_submitted", "Workflows this process submitted.", registry=registry
        )
        self.workflows = prometheus_client.Counter(
            "streamflow_workflows_ended",
            "Workflows whose end this process recorded, by status.",
            ("status",),
            registry=registry,
        )
        self.dead_letters = prometheus_client.Counter(
            "streamflow_dead_letters",
            "Messages this process put on the dead-letter stream, by queue.",
            ("queue",),
            registry=registry,
        )
        self.redis_errors = prometheus_client.Counter(
            "streamflow_redis_errors",
            "Redis errors this process caught and rode out, by the part that met them.",
            ("where",),
            registry=registry,
        )
        self.scripts = prometheus_client.Histogram(
            "streamflow_script_duration_seconds",
            "Round trip of the pipeline that ran each script call.",
            ("script",),
            buckets=SCRIPT_SECONDS,
            registry=registry,
        )

    def workflows_submitted(self, workflow_ids: Sequence[str]) -> None:
        self.submitted.inc(len(workflow_ids))

    def task_started(self, job: Job) -> None:
        labels = (job.actor.name, job.task.options.queue)
        self.started.labels(*labels).inc()
        self.latency.labels(*labels).observe(waited_s(job))
        self.running.inc()

    def task_ended(self, job: Job, event: TaskSucceeded | TaskFailed, duration_s: float) -> None:
        labels = (job.actor.name, job.task.options.queue)
        self.ended[outcome_of(event)].labels(*labels).inc()
        if job.started:  # it started (a poison message is failed unstarted)
            self.duration.labels(*labels).observe(duration_s)
            self.running.dec()

    def workflow_ended(self, workflow_id: str, status: str) -> None:
        self.workflows.labels(status).inc()

    def redis_error(self, where: str) -> None:
        self.redis_errors.labels(where).inc()

    def dead_lettered(self, queue: str, reason: str) -> None:
        self.dead_letters.labels(queue).inc()

    def scripts_ran(
        self, calls: Sequence[Call], seconds: float, error: BaseException | None
    ) -> None:
        """A pipeline of script calls took ``seconds`` (``Scripts.timed``)."""
        if error is not None:
            self.redis_error("scripts")
            return
        for call in calls:  # each call waited for the whole pipeline
            self.scripts.labels(call.script).observe(seconds)


class Throttled(Generic[T]):
    """``read()``'s value, read again at most every ``QUEUE_READ_S`` (one scrape at a
    time reads); when Redis fails, the last value stays (a scrape never fails for Redis:
    the gauges go stale, and the error is logged)."""

    def __init__(self, read: Callable[[], T], empty: T, what: str) -> None:
        self._read = read
        self._what = what
        self._lock = threading.Lock()
        self._read_at = -QUEUE_READ_S
        self._value = empty

    def get(self) -> T:
        with self._lock:
            if time.monotonic() - self._read_at >= QUEUE_READ_S:
                try:
                    self._value = self._read()
                except Exception:
                    log.warning("gauges_not_read", gauges=self._what, exc_info=True)
                self._read_at = time.monotonic()
            return self._value


class QueueGauges(Collector):
    """Per queue, what it holds, read from Redis when scraped (at most every
    ``QUEUE_READ_S``)."""

    GAUGES = (
        ("length", "Entries in the queue's stream (XLEN): waiting and in flight."),
        ("waiting", "Messages not yet delivered to a worker (the consumer group's lag)."),
        ("in_flight", "Messages delivered to a worker and not yet acknowledged."),
        ("delayed", "Messages waiting for their time (delays, retries' backoff)."),
        ("parked", "Messages set aside while their queue or actor is paused."),
        ("dead", "Dead letters of the queue (among the newest 10,000)."),
    )

    def __init__(self, app: App) -> None:
        empty: list[QueueStats] = []
        self._stats = Throttled(lambda: totals(queue_stats(app.store)), empty, "queues")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats.get()
        for name, says in self.GAUGES:
            family = GaugeMetricFamily(f"streamflow_queue_{name}", says, labels=["queue"])
            for each in stats:
                family.add_metric([each.queue], getattr(each, name))
            yield family
        oldest = GaugeMetricFamily(
            "streamflow_queue_oldest_in_flight_seconds",
            "How long the oldest message in flight has been in its queue.",
            labels=["queue"],
        )
        for each in stats:
            oldest.add_metric([each.queue], (each.oldest_in_flight_ms or 0) / 1000)
        yield oldest


class WorkerGauges(Collector):
    """The worker processes on the roster by state, read from Redis when scraped (at
    most every ``QUEUE_READ_S``; one round trip)."""

    def __init__(self, app: App) -> None:
        def read() -> dict[str, int]:
            cards, now_ms = roster.read_at(app.client, app.keys)
            return roster.counts(cards, now_ms)

        empty: dict[str, int] = {}
        self._counts = Throttled(read, empty, "workers")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "streamflow_workers",
            "Worker processes on the roster: live (beat within 10 s), silent (gone without "
            "a word) and stopped within the last hour.",
            labels=["state"],
        )
        for state, count in self._counts.get().items():
            family.add_metric([state], count)
        yield family


def instrument(app: App, registry: CollectorRegistry | None = None) -> Metrics:
    """Count ``app``'s work (its workers', its submissions) into ``registry`` (default:
    prometheus-client's global one); returns the metrics. Once per registry."""
    registry = prometheus_client.REGISTRY if registry is None else registry
    metrics = Metrics(registry)
    registry.register(QueueGauges(app))
    registry.register(WorkerGauges(app))
    app.observers.add(metrics)
    app.store.scripts.timed = metrics.scripts_ran
    return metrics


def serve(app: App, port: int, host: str = "0.0.0.0") -> Any:
    """``instrument(app)`` and serve ``/metrics`` on ``host:port`` from a daemon thread;
    returns the HTTP server (``shutdown()`` stops it).

    Raises:
        OSError: the port cannot be bound.
    """
    metrics = instrument(app)
    server, _thread = prometheus_client.start_http_server(port, host, registry=metrics.registry)
    log.info("metrics_served", url=f"http://{host}:{port}/metrics")
    return server
