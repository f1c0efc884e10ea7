"""Leases, time limits, cancellation and poison messages, with real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, Chain, Group, ResultFailure, StreamflowError, current_task
from streamflow.model.events import (
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCancelled,
)
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


def test_time_limits_sync_and_async(app: App) -> None:
    @app.actor(time_limit=0.2, max_retries=1, min_backoff=0.01)
    def spins() -> None:
        while True:
            pass

    @app.actor(time_limit=0.2)
    async def sleeps() -> None:
        await asyncio.Event().wait()  # until cancelled

    with app.worker(concurrency=2):
        sync_handle = spins.send()
        async_handle = sleeps.send()
        with pytest.raises(ResultFailure, match="TimeLimitExceeded") as sync_info:
            sync_handle.get_result(block=True, timeout=30)
        with pytest.raises(ResultFailure, match="TimeLimitExceeded"):
            async_handle.get_result(block=True, timeout=30)
    assert "longer than 200 ms" in sync_info.value.error["message"]
    attempts = [e.event.attempt for e in sync_handle.history() if isinstance(e.event, TaskFailed)]
    assert attempts == [1, 2]  # the retry policy applies


def test_cancel_a_running_group(app: App, r: redis.Redis) -> None:
    @app.actor
    def patient(i: int) -> str:
        context = current_task()
        assert context is not None
        while not context.cancelled:
            r.blpop(["never-pushed"], timeout=0.05)
        r.incr("saw-cancel")
        return "stopped early"

    @app.actor
    async def patient_async(i: int) -> None:
        try:
            await asyncio.Event().wait()  # until cancelled
        except asyncio.CancelledError:
            r.incr("saw-cancel")
            raise

    @app.actor
    def after(*piped: Any) -> None:
        raise AssertionError("must never run")

    canvas = Chain(
        Group(patient.message(1), patient.message(2), patient_async.message(3)), after.message()
    )
    with app.worker(concurrency=4):
        handle = app.submit(canvas)
        wait_until(lambda: sum(isinstance(e.event, TaskStarted) for e in handle.history()) == 3, 10)
        assert handle.cancel(reason="changed my mind")
        assert not handle.cancel(reason="again")
        wait_until(lambda: int(r.get("saw-cancel") or 0) == 3, 10, message="tasks see it")
        with pytest.raises(ResultFailure, match="changed my mind"):
            handle.get_result(block=True, timeout=10)
    status = handle.status()
    assert (status.status, status.reason) == ("cancelled", "changed my mind")
    history = handle.history()
    assert sum(isinstance(e.event, WorkflowCancelled) for e in history) == 1
    assert {e.event.node for e in history if isinstance(e.event, TaskEnqueued)} == {0, 1, 2}


def test_worker_refuses_a_redis_that_evicts(r: redis.Redis, app: App) -> None:
    @app.actor
    def f() -> None:
        pass

    r.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(StreamflowError, match="needs 'noeviction'"):
            app.worker().run()
    finally:
        r.config_set("maxmemory-policy", "noeviction")


def test_dead_letters_list_show_requeue_purge(app: App, r: redis.Redis) -> None:
    @app.actor
    def f() -> int:
        return 7

    queue = app.keys.queue(0, "default")
    with app.worker():
        r.xadd(queue, {"m": b"\x00garbage"})
        wait_until(lambda: r.xlen("sf:dead") == 1, 10, message="dead letter")
    (letter,) = app.dead_letters.list()
    assert letter.data == b"\x00garbage"
    assert "undecodable" in letter.reason
    assert letter.queue == queue
    assert letter.first_seen_ms <= letter.last_seen_ms
    assert app.dead_letters.get(letter.id) == letter
    new_id = app.dead_letters.requeue(letter.id)
    assert r.xrange(queue)[0][0].decode() == new_id
    assert app.dead_letters.list() == []
    r.xadd("sf:dead", {"reason": "x", "queue": queue, "msg_id": "1-0", "data": b""})
    assert app.dead_letters.purge() == 1
    with pytest.raises(KeyError, match="no dead letter"):
        app.dead_letters.get("1-0")


def test_cli_cancel_and_dead_letters(app: App, r: redis.Redis, redis_url: str) -> None:
    @app.actor
    def waits() -> None:
        pass

    handle = waits.send()  # no worker: stays queued
    run = [sys.executable, "-m", "streamflow.cli", "--log-level", "warning"]
    done = subprocess.run(
        [*run, "cancel", handle.id, "--url", redis_url, "--reason", "from the CLI"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"cancelled {handle.id}" in done.stdout
    assert handle.status().reason == "from the CLI"
    again = subprocess.run([*run, "cancel", handle.id, "--url", redis_url], capture_output=True)
    assert again.returncode == 1
    r.xadd("sf:dead", {"reason": "bad bytes", "queue": "q", "msg_id": "5-0", "data": b"\x01"})
    listed = subprocess.run(
        [*run, "dead-letters", "list", "--url", redis_url], capture_output=True, text=True
    )
    assert "bad bytes" in listed.stdout


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


def test_retries_backoff_retry_when_and_throws(app: App, r: redis.Redis) -> None:
    @app.actor(max_retries=3, min_backoff=0.1, max_backoff=0.15)
    def flaky() -> str:
        if r.incr("flaky") < 4:
            raise ValueError("not yet")
        return "ok"

    @app.actor(max_retries=5, throws=(KeyError,))
    def hopeless() -> None:
        raise KeyError("never retried")

    @app.actor(
        min_backoff=0.01,
        max_backoff=0.05,
        retry_when=lambda retries, exc: isinstance(exc, OSError) and retries < 6,
    )
    def picky() -> str:
        if r.incr("picky") < 7:
            raise OSError("transient")
        return "finally"

    with app.worker(concurrency=3):
        flaky_handle = flaky.send()
        hopeless_handle = hopeless.send()
        picky_handle = app.submit(picky.message_with_options(), retention=60)
        assert flaky_handle.get_result(block=True, timeout=30) == "ok"
        with pytest.raises(ResultFailure, match="KeyError"):
            hopeless_handle.get_result(block=True, timeout=30)
        assert picky_handle.get_result(block=True, timeout=60) == "finally"
    history = flaky_handle.history()
    failures = {e.event.attempt: e for e in history if isinstance(e.event, TaskFailed)}
    enqueues = {e.event.attempt: e for e in history if isinstance(e.event, TaskEnqueued)}
    assert sorted(enqueues) == [1, 2, 3, 4]
    for attempt, failed in failures.items():
        # Exponential with jitter: min_backoff * 2^(n-1), capped, times [0.5, 1].
        bound = min(150, 100 * 2 ** (attempt - 1))
        assert bound / 2 <= failed.event.retry_delay_ms <= bound
        due = failed.time_ms + failed.event.retry_delay_ms
        started = next(
            e
            for e in history
            if isinstance(e.event, TaskStarted) and e.event.attempt == attempt + 1
        )
        assert started.time_ms >= due  # the retry went through the timer, not early
    hopeless_attempts = [
        e.event.attempt for e in hopeless_handle.history() if isinstance(e.event, TaskEnqueued)
    ]
    assert hopeless_attempts == [1]
    assert int(r.get("picky") or 0) == 7  # beyond max_retries (0): retry_when decided


def test_sweep_resends_a_lost_message(app: App, r: redis.Redis) -> None:
    @app.actor
    def step(*piped: Any) -> str:
        return "done"

    handle = app.submit(Chain(step.message(), step.message()))
    queue = app.keys.queue(0, "default")
    ((msg_id, _),) = r.xrange(queue)
    r.xdel(queue, msg_id)  # the message is lost (e.g. a failover dropped it)
    with capture_logs() as logs, app.worker(stuck_after_s=0.3, sweep_interval_s=0.1):
        assert handle.get_result(block=True, timeout=30) == "done"
    assert any(log["event"] == "lost_message_resent" for log in logs)
    starts = [e for e in handle.history() if isinstance(e.event, TaskStarted)]
    assert len(starts) == 2


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
