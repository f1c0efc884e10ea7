"""Several worker and recovery-projector processes on one workflow (real OS processes)."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from streamflow import App, Chain, Group, group
from streamflow.model.events import BarrierReleased, TaskStarted
from streamflow.model.messages import encode_wake
from tests.helpers import check_contract, definition_of
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def spawn(
    redis_url: str, *roles: str, log: Path, lease_ms: int = 30_000
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "streamflow.cli",
        "--log-level",
        "info",
        "worker",
        "tests.sample_app:app",
        "--processes",
        "1",
        "--url",
        redis_url,
        "--concurrency",
        "4",
        "--lease-ms",
        str(lease_ms),
        "--roles",
        *roles,
    ]
    env = {**os.environ, "STREAMFLOW_REDIS_URL": redis_url}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb")
    )


@pytest.fixture
def remote(app: App) -> dict[str, Any]:
    """Stand-ins for the sample app's actors: submitted here, run by worker processes."""

    def stub(*args: Any) -> Any:
        raise AssertionError("runs in the worker processes only")

    return {name: app.actor(stub, actor_name=name) for name in ("counted", "gather", "gated")}


@pytest.fixture
def processes(redis_url: str, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_two_workers_two_projectors_one_workflow(
    app: App,
    remote: dict[str, Any],
    r: redis.Redis,
    redis_url: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    canvas = Chain(
        Group(*(remote["counted"].message(f"root{i}") for i in range(10))),
        Group(*(remote["counted"].message(f"mid{i}") for i in range(489))),
        remote["gather"].message(),
    )
    handle = app.submit(canvas)
    queue = app.keys.queue(0, "default")
    # Duplicate queue messages (at-least-once delivery): each must be dropped as DUP
    # (or ALREADY_DONE), never run twice.
    for _, fields in r.xrange(queue, count=3):
        r.xadd(queue, fields)
    assert r.xlen(queue) == 13

    # Wake-ups already due, as an inline projector that died would leave them: the
    # recovery projectors project the workflow while the workers' inline projections
    # run. (Successes that decide nothing schedule none, and a task alone in flight is
    # projected in its outcome's round trip, so without these a race is left to luck.)
    for i in range(5):
        r.xadd(app.keys.wake(0), {"m": encode_wake(handle.id, f"test:{i}")})

    logs = [tmp_path / f"proc{i}.log" for i in range(4)]
    # The projectors first: up before the workers can finish the workflow without them
    # (and before a SIGTERM could find one still starting, without its handler).
    processes += [spawn(redis_url, "recovery", "timer", log=logs[i]) for i in range(2, 4)]
    for log in logs[2:]:
        wait_until(lambda log=log: "worker_started" in log.read_text(), 60, message=str(log))
    processes += [spawn(redis_url, "tasks", "timer", log=logs[i]) for i in range(2)]

    assert handle.result(timeout=120) == 489
    history = handle.history()
    definition = definition_of(app, history)
    assert definition.task_count == 500
    check_contract(definition, history)
    starts = collections.Counter(
        (e.event.node, e.event.attempt) for e in history if isinstance(e.event, TaskStarted)
    )
    twice = [
        (e.seq, e.event.node, e.event.worker, e.event.msg_id)
        for e in history
        if isinstance(e.event, TaskStarted) and starts[(e.event.node, e.event.attempt)] > 1
    ]
    reclaims = [line for log in logs for line in log.read_text().splitlines() if "reclaim" in line]
    assert not twice, f"a body ran twice: {twice}; {reclaims}"
    runs = {k.decode(): int(r.get(k)) for k in r.scan_iter(match="runs:*", count=1000)}
    assert len(runs) == 499
    assert set(runs.values()) == {1}

    # A worker the others finished without may still be starting: SIGTERM once each one
    # has its handler (a loaded machine takes seconds to start a process).
    for log in logs[:2]:
        wait_until(lambda log=log: "worker_started" in log.read_text(), 60, message=str(log))
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        assert process.wait(timeout=60) == 0
    projector_logs = "".join(path.read_text() for path in logs[2:])
    assert "recovery_projection" in projector_logs
    assert r.xlen(queue) == 0


def test_sigterm_finishes_in_flight_work_then_exits_zero(
    app: App,
    remote: dict[str, Any],
    r: redis.Redis,
    redis_url: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    handle = app.submit(Chain(remote["gated"].message(), remote["counted"].message("after")))
    processes.append(spawn(redis_url, "tasks", "timer", log=tmp_path / "worker.log"))
    # Its body runs (a message started but still waiting for a thread is handed back).
    wait_until(lambda: r.get("runs:gated"), 30, message="the gated body to run")
    processes[0].send_signal(signal.SIGTERM)
    r.lpush("gate", 1)
    assert processes[0].wait(timeout=30) == 0
    # The in-flight task finished and was recorded. A message fetched in the last read
    # before the signal, but not started, was handed back at once (not stranded until its
    # lease expires): any worker takes it now.
    assert handle.status().counts["succeeded"] >= 1
    pending = r.xpending_range(app.keys.queue(0, "default"), "workers", "-", "+", 10)
    assert all(entry["time_since_delivered"] >= 10**11 for entry in pending), pending
    processes.append(spawn(redis_url, "tasks", "timer", log=tmp_path / "worker2.log"))
    assert handle.result(timeout=30) == "after"


def test_completion_callback_fires_once_with_projectors_racing(
    app: App,
    remote: dict[str, Any],
    r: redis.Redis,
    redis_url: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    g = group([remote["counted"].message(f"member{i}") for i in range(100)])
    g.add_completion_callback(remote["counted"].message("callback"))
    g.run(app=app)
    # Recovery grace 0 in the sample app: two recovery projectors race the inline
    # projections of the outcomes that are projected (the last members' and the
    # barrier's release; a member's success short of the barrier decides nothing).
    processes += [spawn(redis_url, "tasks", "timer", log=tmp_path / f"w{i}.log") for i in range(2)]
    processes += [spawn(redis_url, "recovery", log=tmp_path / f"p{i}.log") for i in range(2)]
    assert g.get_results(block=True, timeout=60) == [f"member{i}" for i in range(100)]
    assert int(r.get("runs:callback") or 0) == 1
    history = g.handle.history()
    assert sum(isinstance(e.event, BarrierReleased) for e in history) == 1
    check_contract(definition_of(app, history), history)
