"""Prometheus metrics (``streamflow[metrics]``): a real worker process serves /metrics;
after a known workload, the scraped values are exactly that workload's.

prometheus-client is imported in the tests: the settings of scripts/test whose venvs
lack the extra still collect (and deselect) this module."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from streamflow import App
from tests.helpers import ROOT, masters, stop, worker_process
from tests.samples.observed import actors
from tests.waiting import wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""Scraped samples by name and labels."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def worker(redis_url: str, tmp_path: Path) -> Iterator[int]:
    """A worker process of tests.samples.observed serving its metrics; yields the port."""
    port = free_port()
    args = ["--queues", "default", "risky", "--concurrency", "2"]
    args += ["--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
    log = tmp_path / "worker.log"
    process = worker_process("tests.samples.observed:app", redis_url, log, *args)
    try:
        wait_until(lambda: scrape(port) is not None, 30, 0.05, "the metrics endpoint")
        yield port
    finally:
        stop(process, log)


def scrape(port: int) -> Samples | None:
    """Every sample on the endpoint, by name and labels (None: not serving yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    return samples(text)


def parse(text: str) -> Any:
    from prometheus_client.parser import text_string_to_metric_families

    return text_string_to_metric_families(text)


def samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parse(text)
        for sample in family.samples
    }


def task(actor: str, queue: str = "default") -> tuple[tuple[str, str], ...]:
    return (("actor", actor), ("queue", queue))


def gauge(name: str, queue: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (f"streamflow_queue_{name}", (("queue", queue),))


def scraped_when(port: int, check: Callable[[Samples], bool], what: str) -> Samples:
    """The first scrape that passes ``check`` (the queue gauges are read from Redis at a
    scrape, at most every 5 s: the scrapes in between show the last read)."""

    def seen() -> Samples | None:
        found = scrape(port)
        return found if found and check(found) else None

    return wait_until(seen, 15, 0.2, what)


def test_a_worker_process_serves_what_it_did(app: App, r: redis.Redis, worker: int) -> None:
    run = actors(app)
    # Messages for a queue no worker reads: the queue gauges show them waiting.
    idle = app.actor(lambda: None, actor_name="idle", queue="idle")
    idle.send()
    idle.send()
    # Bytes that are no task message: the worker dead-letters them.
    r.xadd(app.keys.queue(0, "default"), {"m": b"not a message"})
    held = run["held"].send("open")

    def holding(seen: Samples) -> bool:
        return (
            seen.get(gauge("in_flight", "default")) == 1
            and seen.get(gauge("dead", "default")) == 1
            and seen.get(gauge("waiting", "idle")) == 2
            and seen.get(("streamflow_workers", (("state", "live"),))) == 1
        )

    seen = scraped_when(worker, holding, "the held task in flight, a dead letter, a worker")
    assert seen[("streamflow_tasks_running", ())] == 1
    assert seen[gauge("length", "default")] == 1  # the held task's message
    assert seen[gauge("oldest_in_flight_seconds", "default")] > 0
    assert (seen[gauge("length", "idle")], seen[gauge("in_flight", "idle")]) == (2, 0)
    assert seen[gauge("oldest_in_flight_seconds", "idle")] == 0
    workers = {
        labels[0][1]: value
        for (name, labels), value in seen.items()
        if name == "streamflow_workers"
    }
    assert workers == {"live": 1, "silent": 0, "stopped": 0}
    r.lpush("open", 1)
    held.wait(timeout=30)

    handles = [run["fine"].send(i) for i in range(5)]
    handles += [run["flaky"].send("a"), run["broken"].send()]
    for handle in handles:
        handle.wait(timeout=30)

    def ended(seen: Samples) -> bool:
        # A client sees a workflow's end as soon as it is written; the worker counts it
        # just after: wait for every end to be counted.
        counted = {
            status: seen.get(("streamflow_workflows_ended_total", (("status", status),)))
            for status in ("completed", "failed")
        }
        return counted == {"completed": 7, "failed": 1}

    seen = scraped_when(worker, ended, "every ended workflow counted")
    counts = {
        (name.removeprefix("streamflow_tasks_"), labels[0][1]): value
        for (name, labels), value in seen.items()
        if name.startswith("streamflow_tasks_") and name.endswith("_total")
    }
    assert counts == {
        ("started_total", "held"): 1,
        ("succeeded_total", "held"): 1,
        ("started_total", "fine"): 5,
        ("succeeded_total", "fine"): 5,
        ("started_total", "flaky"): 2,
        ("retried_total", "flaky"): 1,
        ("succeeded_total", "flaky"): 1,
        ("started_total", "broken"): 1,
        ("failed_total", "broken"): 1,
    }
    assert seen[("streamflow_tasks_running", ())] == 0
    for name in ("streamflow_task_duration_seconds", "streamflow_task_queue_latency_seconds"):
        assert seen[(f"{name}_count", task("fine"))] == 5
        assert seen[(f"{name}_count", task("flaky"))] == 2
        assert seen[(f"{name}_count", task("broken", "risky"))] == 1
        assert seen[(f"{name}_bucket", tuple(sorted((*task("fine"), ("le", "+Inf")))))] == 5
    ended_by = {
        labels: value
        for (name, labels), value in seen.items()
        if name == "streamflow_workflows_ended_total"
    }
    assert ended_by == {(("status", "completed"),): 7, (("status", "failed"),): 1}
    scripts = {
        labels[0][1]: value
        for (name, labels), value in seen.items()
        if name == "streamflow_script_duration_seconds_count"
    }
    # Each task ran one script at least (a lone task's ends in one); the timer's and the
    # heartbeat's are counted too.
    assert scripts["lone"] >= 5 and scripts["beat"] >= 1, scripts
    errors = {
        labels: v for (name, labels), v in seen.items() if name.startswith("streamflow_redis")
    }
    assert errors == {}, errors  # none happened: no series yet

    seen = scraped_when(
        worker, lambda seen: seen.get(gauge("in_flight", "default")) == 0, "the queues read again"
    )
    assert seen[gauge("waiting", "idle")] == 2
    assert seen[gauge("dead", "default")] == 1
    assert seen[gauge("oldest_in_flight_seconds", "default")] == 0


def test_redis_refusing_an_outcome_is_counted(app: App, r: redis.Redis, worker: int) -> None:
    """A real error: Redis refuses writes (too few replicas) while a task runs. Its body's
    next read of a list is refused, and so is the recording of its failure; the worker
    rides it out (the message stays pending) and counts it."""
    run = actors(app)
    run["held"].send("never-pushed")
    scraped_when(worker, lambda seen: seen[("streamflow_tasks_running", ())] == 1, "a start")
    servers = masters(r)
    try:
        for server in servers:
            server.config_set("min-replicas-to-write", 1)
        where = ("streamflow_redis_errors_total", (("where", "record"),))
        seen = scraped_when(worker, lambda seen: seen.get(where, 0) >= 1, "the error counted")
    finally:
        for server in servers:
            server.config_set("min-replicas-to-write", 0)
    assert seen[("streamflow_tasks_running", ())] == 0


def registered(app: App) -> Any:
    """A registry of its own with ``app``'s metrics in it."""
    from prometheus_client import CollectorRegistry

    from streamflow.metrics import instrument

    registry = CollectorRegistry()
    instrument(app, registry)
    return registry


def test_a_role_counts_the_redis_errors_it_rides_out(app: App, r: redis.Redis) -> None:
    """A real error: the heartbeat's sorted set is made a string, so each beat is refused
    (WRONGTYPE); the heartbeat rides it out, telling each error, and beats again once
    the key is gone."""
    registry = registered(app)

    @app.actor
    def noop() -> None:
        pass

    worker = app.worker(concurrency=1)  # it gives its roles the App's observers

    def errors() -> float:
        where = {"where": "heartbeat"}
        return registry.get_sample_value("streamflow_redis_errors_total", where) or 0.0

    with worker:
        beats = app.keys.beats(0)
        wait_until(lambda: r.zscore(beats, worker.name), 10, message="a beat")
        r.set(beats, "not a sorted set")
        try:
            wait_until(lambda: errors() >= 2, 10, message="the refused beats counted")
        finally:
            r.delete(beats)
        wait_until(lambda: r.zscore(beats, worker.name), 10, message="a beat again")


def test_the_worker_tells_what_it_dead_lettered_and_the_errors_it_rode_out(
    app: App, r: redis.Redis
) -> None:
    registry = registered(app)

    @app.actor
    def noop() -> None:
        pass

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    with app.worker(concurrency=1) as worker:
        r.xadd(app.keys.queue(0, "default"), {"m": b"not a message"})
        wait_until(lambda: value("streamflow_dead_letters_total", queue="default") == 1, 5)
        beats = app.keys.beats(0)
        wait_until(lambda: r.zscore(beats, worker.name), 10, message="a beat")
        r.set(beats, "not a sorted set")
        try:
            wait_until(lambda: value("streamflow_redis_errors_total", where="heartbeat"), 5)
        finally:
            r.delete(beats)


def test_an_instrumented_app_counts_its_submissions(app: App) -> None:
    from prometheus_client import CollectorRegistry

    from streamflow.metrics import instrument

    registry = CollectorRegistry()
    instrument(app, registry)
    run = actors(app)
    run["fine"].send(1)
    app.submit_many([run["fine"].message(i) for i in range(3)])
    assert registry.get_sample_value("streamflow_workflows_submitted_total") == 4
    # The queue gauges are read from Redis when scraped.
    assert registry.get_sample_value("streamflow_queue_waiting", {"queue": "default"}) == 4


def test_without_the_extra_the_worker_says_what_to_install(redis_url: str) -> None:
    code = "import sys; sys.modules['prometheus_client'] = None; "
    code += "from streamflow.cli.main import main; sys.exit(main(sys.argv[1:]))"
    args = ["worker", "tests.samples.observed:app", "--url", redis_url, "--metrics-port", "1"]
    args += ["--processes", "1"]  # the import is blocked in this process only
    env = {**os.environ, "STREAMFLOW_REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.endswith(
        "streamflow worker: ImportError: streamflow's metrics need prometheus-client: "
        "pip install 'streamflow[metrics]'\n"
    ), done.stderr
