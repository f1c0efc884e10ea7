"""
Leases, poison messages and outages, with real processes: worker processes killed,
paused or stopped past their grace, a Redis restarted under them, a replica that must
confirm each write.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, Chain, Group, ResultFailure
from streamflow.model.events import TaskFailed, TaskStarted, TaskSucceeded
from tests.helpers import check_contract, definition_of
from tests.test_processes import spawn
from tests.waiting import wait_until


def stub(app: App, name: str) -> Any:
    def body(*args: Any) -> Any:
        raise AssertionError("runs in the worker processes only")

    return app.actor(body, actor_name=name)


def test_a_live_worker_keeps_its_lease(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    slow = stub(app, "slow")
    handle = slow.send(3.0)  # three times the lease
    workers = [
        spawn(redis_url, "tasks", "timer", log=tmp_path / f"w{i}.log", lease_ms=1000)
        for i in range(2)
    ]
    try:
        assert handle.get_result(block=True, timeout=30) == "slow done"
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    starts = [e for e in handle.history() if isinstance(e.event, TaskStarted)]
    assert len(starts) == 1, "the heartbeat must keep the message leased"
    assert int(r.get("runs:slow") or 0) == 1


def test_poison_message_fails_after_max_deliveries(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    crash = stub(app, "crash")
    handle = crash.send()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        # Each delivery kills its worker; restart one until the attempt is failed.
        def restart_dead() -> bool:
            if not workers or workers[-1].poll() is not None:
                log = tmp_path / f"w{len(workers)}.log"
                workers.append(spawn(redis_url, "tasks", "timer", log=log, lease_ms=300))
            return handle.status().done

        wait_until(restart_dead, 60, interval_s=0.1, message="poison to be detected")
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    with pytest.raises(ResultFailure, match="PoisonMessageError"):
        handle.get_result()
    assert int(r.get("runs:crash") or 0) == 5  # max_deliveries, then no more runs
    ((_, fields),) = r.xrange("sf:dead")
    assert b"delivered 6 times" in fields[b"reason"]


def test_redis_restart_mid_run_loses_nothing(redis_binary: str, tmp_path: Path) -> None:
    from streamflow.store.embedded import EmbeddedRedis

    with EmbeddedRedis(binary=redis_binary, appendfsync="always") as server:
        app = App(server.url)
        w = stub(app, "work").message
        handles = [
            app.submit(Chain(w(0.05), Group(w(0.05), w(0.05), w(0.05)), w(0.05))) for _ in range(50)
        ]
        log = tmp_path / "worker.log"
        worker = spawn(server.url, "tasks", "timer", "recovery", log=log, lease_ms=1000)
        try:
            wait_until(lambda: handles[5].status().counts["succeeded"] > 0, 30, message="progress")
            server.restart(hard=True, down_s=2)  # SIGKILL; down 2 s; up on the same AOF
            results = [h.get_result(block=True, timeout=120) for h in handles]
            assert results == ["worked"] * 50
            assert worker.poll() is None, "the worker rode out the outage"
        finally:
            worker.kill()
            worker.wait()
        text = log.read_text()
        assert "redis_unreachable" in text and "redis_reachable_again" in text
        for handle in handles:
            history = handle.history()
            check_contract(definition_of(app, history), history)
        app.close()


def _started(handle: Any) -> bool:
    return any(isinstance(e.event, TaskStarted) for e in handle.history())


def test_sigkill_mid_task_reruns_after_the_lease(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    handle = stub(app, "slow").send(1.0)
    first = spawn(redis_url, "tasks", "timer", log=tmp_path / "first.log", lease_ms=500)
    try:
        wait_until(lambda: int(r.get("runs:slow") or 0) == 1, 30, message="the task to start")
        # A lone task's start is recorded once it has run a while: then it is cut.
        wait_until(lambda: _started(handle), 10, message="its start to be recorded")
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = spawn(redis_url, "tasks", "timer", log=tmp_path / "second.log", lease_ms=500)
        try:
            assert handle.get_result(block=True, timeout=30) == "slow done"
        finally:
            second.kill()
            second.wait()
    finally:
        first.kill()
        first.wait()
    history = handle.history()
    starts = [e.event for e in history if isinstance(e.event, TaskStarted)]
    assert [(s.node, s.attempt) for s in starts] == [(0, 1), (0, 1)]
    assert starts[0].msg_id == starts[1].msg_id  # the same message, redelivered
    assert sum(isinstance(e.event, (TaskSucceeded, TaskFailed)) for e in history) == 1


def test_paused_worker_loses_its_lease_and_its_late_outcome(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    handle = stub(app, "slow").send(1.5)
    paused = spawn(redis_url, "tasks", "timer", log=tmp_path / "paused.log", lease_ms=500)
    other: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: int(r.get("runs:slow") or 0) == 1, 30, message="the task to start")
        wait_until(lambda: _started(handle), 10, message="its start to be recorded")
        paused.send_signal(signal.SIGSTOP)
        other = spawn(redis_url, "tasks", "timer", log=tmp_path / "other.log", lease_ms=500)
        assert handle.get_result(block=True, timeout=30) == "slow done"
        paused.send_signal(signal.SIGCONT)  # its body finishes; its outcome comes late
        wait_until(
            lambda: "outcome_rejected" in (tmp_path / "paused.log").read_text(),
            30,
            message="the late outcome to be rejected",
        )
    finally:
        for process in (paused, other):
            if process is not None:
                process.kill()
                process.wait()
    history = handle.history()
    assert sum(isinstance(e.event, TaskStarted) for e in history) == 2
    assert sum(isinstance(e.event, TaskSucceeded) for e in history) == 1
    assert int(r.get("runs:slow") or 0) == 2  # never a third run: no lease stolen back


def test_sigterm_past_grace_hands_leases_back(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    stub(app, "slow").send(3.0)
    log = tmp_path / "leaving.log"
    command = [sys.executable, "-m", "streamflow.cli", "--log-level", "info", "worker"]
    leaving = subprocess.Popen(
        [
            *command,
            "tests.sample_app:app",
            "--url",
            redis_url,
            "--grace",
            "0.2",
            "--processes",
            "1",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "STREAMFLOW_REDIS_URL": redis_url},
        stderr=log.open("wb"),
    )
    try:
        wait_until(lambda: int(r.get("runs:slow") or 0) == 1, 30, message="the task to start")
        leaving.send_signal(signal.SIGTERM)
        # Default lease 30 s: only a handed-back message is taken at once.
        taker = spawn(redis_url, "tasks", "timer", log=tmp_path / "taker.log")
        try:
            wait_until(lambda: int(r.get("runs:slow") or 0) == 2, 15, message="a quick takeover")
        finally:
            taker.kill()
            taker.wait()
    finally:
        leaving.kill()
        leaving.wait()
    assert "leases_handed_back" in log.read_text()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_replicated_durability_waits_for_a_replica(redis_binary: str) -> None:
    from streamflow import DurabilityError
    from streamflow.store.embedded import EmbeddedRedis

    primary_port, replica_port = free_port(), free_port()
    with EmbeddedRedis(binary=redis_binary, port=primary_port) as primary:
        replica = EmbeddedRedis(
            binary=redis_binary,
            port=replica_port,
            extra_args=["--replicaof", "127.0.0.1", str(primary_port)],
        )
        replica.start()
        replica_client = redis.Redis.from_url(replica.url)
        wait_until(
            lambda: replica_client.info("replication").get("master_link_status") == "up",
            30,
            message="the replica to sync",
        )
        app = App(primary.url, durability="replicated", replicas=1, durability_timeout=0.5)

        @app.actor
        def double(x: int) -> int:
            return 2 * x

        with app.worker(concurrency=2):
            handle = double.send(21)
            assert handle.get_result(block=True, timeout=30) == 42
        # Every acknowledged write reached the replica.
        assert replica_client.exists(app.keys.archive(handle.id))
        replica.stop()
        with pytest.raises(DurabilityError, match="0 of 1 replicas confirmed"):
            double.send(1)
        app.close()


def test_clients_ride_out_an_outage(redis_binary: str, tmp_path: Path) -> None:
    import threading

    from streamflow.store.embedded import EmbeddedRedis

    with EmbeddedRedis(binary=redis_binary, directory=str(tmp_path / "redis")) as server:
        app = App(server.url)

        @app.actor
        def double(x: int) -> int:
            return 2 * x

        outage = threading.Thread(target=lambda: server.restart(hard=True, down_s=1.0))
        with capture_logs() as logs:
            outage.start()
            handles = [double.send(i) for i in range(20)]  # some while Redis is down
            outage.join()
        with app.worker(concurrency=2):
            assert [h.get_result(block=True, timeout=30) for h in handles] == [
                2 * i for i in range(20)
            ]
        events = [log["event"] for log in logs]
        assert events.count("redis_unreachable") == 1
        assert events.count("redis_reachable_again") == 1
        app.close()
