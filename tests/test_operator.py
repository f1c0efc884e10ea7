"""What an operator meets: secrets stay secret, a worker waits for Redis, the connection is
explicit, the command line says what is wrong in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, StreamflowError
from streamflow.model.messages import encode_task_message
from streamflow.runtime.outage import Outage
from streamflow.store.embedded import EmbeddedRedis
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "streamflow.cli", "--log-level", "info"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_redis_password_shows_nowhere(redis_binary: str) -> None:
    with EmbeddedRedis(binary=redis_binary, port=_free_port()) as server:
        port = redis.Redis.from_url(server.url).connection_pool.connection_kwargs["port"]
        redis.Redis.from_url(server.url).config_set("requirepass", "s3cret")
        url = f"redis://:s3cret@127.0.0.1:{port}/0"
        with capture_logs() as logs:
            app = App(url)

            @app.actor
            def add(x: int) -> int:
                return x + 1

            with app.worker(concurrency=2) as worker:
                assert add.send(1).result(timeout=30) == 2
                shown = [repr(app), str(app), repr(app.store), repr(worker)]
            app.close()
        assert "s3cret" not in " ".join(shown) + repr(logs)
        assert "***" in repr(app)


def test_a_worker_started_before_redis_waits_for_it(redis_binary: str, tmp_path: Path) -> None:
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    log = tmp_path / "worker.log"
    env = {**os.environ, "STREAMFLOW_REDIS_URL": url}
    command = [*CLI, "worker", "tests.sample_app:app", "--url", url, "--processes", "1"]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stderr=log.open("wb"))
    try:
        wait_until(lambda: "redis_unreachable" in log.read_text(), 30)
        assert worker.poll() is None  # it waits, it does not exit
        with EmbeddedRedis(binary=redis_binary, port=port) as server:
            app = App(server.url)
            handle = app.actor(lambda tag: tag, actor_name="counted").send("late")
            assert handle.result(timeout=60) == "late"
            text = log.read_text()
            assert "redis_reachable_again" in text and "worker_started" in text
            app.close()
    finally:
        worker.kill()
        worker.wait()


def test_a_refused_command_is_not_called_unreachable() -> None:
    with capture_logs() as logs:
        Outage(__import__("structlog").get_logger()).down(
            redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'.")
        )
    assert [e["event"] for e in logs] == ["redis_refused"]
    assert "OOM" in logs[0]["error"]


def _cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env or dict(os.environ), capture_output=True, text=True
    )


def test_the_worker_uses_the_url_it_is_given_or_refuses(redis_url: str, tmp_path: Path) -> None:
    (tmp_path / "fixed_app.py").write_text(
        "from streamflow import App\napp = App('redis://:hunter2@127.0.0.1:1/0')\n"
    )
    (tmp_path / "bare_app.py").write_text("from streamflow import App\napp = App()\n")
    env = {k: v for k, v in os.environ.items() if k != "STREAMFLOW_REDIS_URL"}
    env["PYTHONPATH"] = str(ROOT)
    fixed = _cli("worker", "fixed_app:app", "--url", redis_url, cwd=tmp_path, env=env)
    assert fixed.returncode != 0
    assert "redis://:***@127.0.0.1:1/0" in fixed.stderr and redis_url in fixed.stderr
    assert "hunter2" not in fixed.stderr and "Traceback" not in fixed.stderr
    bare = _cli("worker", "bare_app:app", cwd=tmp_path, env=env)
    assert bare.returncode != 0 and "--embedded" in bare.stderr
    assert "Traceback" not in bare.stderr


def test_the_command_line_says_what_is_wrong_in_one_line(
    app: App, r: redis.Redis, redis_url: str
) -> None:
    unknown = "0-" + "0" * 24
    for command in (["rebuild", unknown], ["cancel", unknown]):
        done = _cli(*command, "--url", redis_url)
        assert done.returncode == 1 and "not found" in done.stdout, done
        assert not r.keys("*")  # nothing written
    missing = _cli("worker", "no_such_module:app", "--url", redis_url)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "no_such_module" in missing.stderr.strip().splitlines()[-1]

    @app.actor
    def one() -> int:
        return 1

    with app.worker():
        handle = one.send()
        assert handle.result(timeout=30) == 1
    # A dead letter of that workflow, now ended: shown decoded; requeueing it is refused.
    queue = app.keys.queue(0, "default")
    data = encode_task_message(handle.id, 0, 1, handle.snapshot().definition.hash)
    dead_id = app.dead_letters.add(queue, "1-1", data, "for the test")
    shown = _cli("dead-letters", "show", dead_id, "--url", redis_url)
    assert f"task message: workflow {handle.id} node 0 attempt 1" in shown.stdout
    refused = _cli("dead-letters", "requeue", dead_id, "--url", redis_url)
    assert refused.returncode == 1 and "has ended" in refused.stderr
    assert "Traceback" not in refused.stderr
    with pytest.raises(StreamflowError, match="has ended"):
        app.dead_letters.requeue(dead_id)
    # A reader that goes away (| head) ends the command quietly (more than a pipe holds).
    for _ in range(1500):
        one.send()
    piped = subprocess.run(
        f"{' '.join(CLI)} ls --limit 1500 --url {redis_url} | head -1",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert piped.stdout.startswith("WORKFLOW") and piped.stderr == "", piped.stderr
