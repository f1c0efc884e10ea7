"""``streamflow health``: a container probe. Exit status 0 when Redis answers and the
scripts are there (loaded if missing), and a named worker beat within ``--max-age``
seconds; else 1."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from streamflow import App
from tests.helpers import CLI, cli, stop, worker_process
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def health(url: str, *args: str, code: int = 0) -> str:
    return cli(url, "health", *args, code=code).stdout


def test_redis_and_its_scripts(app: App, r: redis.Redis, redis_url: str) -> None:
    r.script_flush()  # as after a restart: no script loaded
    first = health(redis_url)
    assert first.startswith("redis    ok\nscripts  ok (")
    assert " 0 loaded now" not in first  # it loaded them
    assert health(redis_url).endswith("scripts  ok (0 loaded now)\n")


def test_a_worker_beats_until_it_stops(app: App, redis_url: str) -> None:
    @app.actor
    def noop() -> None:
        pass

    worker = app.worker(concurrency=1)
    with worker:
        assert f"worker   {worker.name} beat " in health(redis_url, "--worker", worker.name)
        host = worker.name.split(":")[0]
        assert worker.name in health(redis_url, "--worker", host)  # by host, as a container
    gone = health(redis_url, "--worker", worker.name, code=1)  # it left when it stopped
    assert gone.endswith(f"worker   no heartbeat from {worker.name!r}\n")


def test_redis_down() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert health(f"redis://127.0.0.1:{port}/0", code=1).startswith("redis    down: ")


def test_a_stale_beat_fails_the_probe(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """A worker process that stops beating (paused here, as a wedged process would be)
    fails the probe once its last beat is older than ``--max-age``, and passes again
    once it beats."""
    log = tmp_path / "worker.log"
    process = worker_process("tests.sample_app:app", redis_url, log)
    try:
        (raw,) = wait_until(lambda: r.zrange(app.keys.beats(0), 0, -1), 30, message="a beat")
        name = raw.decode()

        def probe() -> subprocess.CompletedProcess[str]:
            command = [*CLI, "health", "--worker", name, "--max-age", "1", "--url", redis_url]
            return subprocess.run(command, capture_output=True, text=True, timeout=60)

        assert probe().returncode == 0
        process.send_signal(signal.SIGSTOP)
        try:
            stale = wait_until(lambda: (done := probe()).returncode == 1 and done, 30)
        finally:
            process.send_signal(signal.SIGCONT)
        last = stale.stdout.splitlines()[-1]
        assert re.fullmatch(rf"worker   {re.escape(name)} beat \d+\.\d s ago: too long", last)
        wait_until(lambda: probe().returncode == 0, 30, message="the worker beating again")
    finally:
        stop(process, log)
