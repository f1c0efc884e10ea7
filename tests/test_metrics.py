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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamflow import App
from tests.helpers import ROOT, stop, worker_process
from tests.samples.observed import actors
from tests.waiting import wait_until


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


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
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


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parse(text)
        for sample in family.samples
    }


def task(actor: str, queue: str = "default") -> tuple[tuple[str, str], ...]:
    return (("actor", actor), ("queue", queue))


def test_a_worker_process_serves_what_it_did(app: App, worker: int) -> None:
    run = actors(app)
    # Messages for a queue no worker reads: the queue gauges show them waiting.
    idle = app.actor(lambda: None, actor_name="idle", queue="idle")
    idle.send()
    idle.send()
    handles = [run["fine"].send(i) for i in range(5)]
    handles += [run["flaky"].send("a"), run["broken"].send()]
    for handle in handles:
        handle.wait(timeout=30)

    def ended() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        # A client sees a workflow's end as soon as it is written; the worker counts it
        # just after: wait for every end to be counted.
        seen = scrape(worker)
        if not seen:
            return None
        counted = {
            status: seen.get(("streamflow_workflows_ended_total", (("status", status),)))
            for status in ("completed", "failed")
        }
        return seen if counted == {"completed": 6, "failed": 1} else None

    seen = wait_until(ended, 10, 0.05, "every ended workflow counted")
    counts = {
        (name.removeprefix("streamflow_tasks_"), labels[0][1]): value
        for (name, labels), value in seen.items()
        if name.startswith("streamflow_tasks_") and name.endswith("_total")
    }
    assert counts == {
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
    assert ended_by == {(("status", "completed"),): 6, (("status", "failed"),): 1}
    scripts = {
        labels[0][1]: value
        for (name, labels), value in seen.items()
        if name == "streamflow_script_duration_seconds_count"
    }
    # Each task ran one script at least (a lone task's ends in one); the timer's and the
    # heartbeat's are counted too.
    assert scripts["lone"] >= 5 and scripts["beat"] >= 1, scripts
    assert seen.get(("streamflow_redis_errors_total", (("where", "scripts"),)), 0) == 0

    # The queue gauges are read from Redis at a scrape, at most every 5 s.
    def idle_seen() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        seen = scrape(worker)
        return seen if seen and ("streamflow_queue_waiting", (("queue", "idle"),)) in seen else None

    seen = wait_until(idle_seen, 10, 0.2, "the queue gauges read again")
    assert seen[("streamflow_queue_waiting", (("queue", "idle"),))] == 2
    assert seen[("streamflow_queue_in_flight", (("queue", "default"),))] == 0
    assert seen[("streamflow_queue_dead", (("queue", "default"),))] == 0


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
