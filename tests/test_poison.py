"""Bad data costs the rest nothing: a real worker process with one poison of each kind in
its queue runs every other workflow in its normal time; each poison becomes a dead letter
with its bytes and a reason, and a workflow that cannot be read ends as failed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from streamflow import App, Chain, WorkflowHandle
from streamflow.model import codec, schema
from streamflow.model.messages import shard_of
from streamflow.model.resume import UNREADABLE
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def _append_raw(r: redis.Redis, app: App, workflow_id: str, payload: bytes) -> None:
    """An entry the log's index counts, whatever its bytes."""
    length = int(r.hget(app.keys.idx(workflow_id), schema.LENGTH) or 0) + 1
    r.xadd(app.keys.log(workflow_id), {schema.EVENT_FIELD: payload, schema.SEQ_FIELD: length})
    r.hset(app.keys.idx(workflow_id), schema.LENGTH, length)


def test_one_poison_of_each_kind_costs_the_rest_nothing(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    def stub(*args: Any) -> Any:
        raise AssertionError("runs in the worker process only")

    c = app.actor(stub, actor_name="counted").message
    queue = app.keys.queue(0, "default")
    good = [app.submit(Chain(c(f"a{i}"), c(f"b{i}"))) for i in range(50)]
    # Messages that are not ours, or name what does not exist.
    r.xadd(queue, {"m": b"\xff garbage"})
    r.xadd(queue, {"x": b"no m field"})
    malformed_id = codec.encode(["evil{1}", 0, 1, bytes(16)])
    r.xadd(queue, {"m": malformed_id})
    # Workflows whose log or definition cannot be read.
    corrupt_entry, unknown_type = (app.submit(c(name)) for name in ("c", "u"))
    _append_raw(r, app, corrupt_entry.id, b"\x10\xff\xfe not an event")
    _append_raw(r, app, unknown_type.id, codec.encode([99, 0, "from the future"]))

    def definition_key(handle: WorkflowHandle) -> str:
        return app.keys.definition(shard_of(handle.id), handle.snapshot().definition.hash)

    # Two workflows of their own shapes, so that the definitions they lose are theirs.
    lost_definition = app.submit(Chain(c("l1"), c("l2"), c("l3")))
    corrupt_definition = app.submit(Chain(c("d1"), c("d2"), c("d3"), c("d4")))
    r.delete(definition_key(lost_definition))
    r.set(definition_key(corrupt_definition), b"\x10\xff truncated")

    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "streamflow.cli", "--log-level", "info", "worker"]
    command += ["tests.sample_app:app", "--url", redis_url, "--processes", "1"]
    env = {**os.environ, "STREAMFLOW_REDIS_URL": redis_url}
    worker = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb")
    )
    try:
        started = time.monotonic()
        results = [handle.get_result(block=True, timeout=60) for handle in good]
        took = time.monotonic() - started
        assert results == [f"b{i}" for i in range(50)]
        assert took < 15, f"{took:.1f} s"  # its normal time: no lease waited out
        unreadable = (corrupt_entry, unknown_type, lost_definition, corrupt_definition)
        for handle in unreadable:
            wait_until(lambda handle=handle: handle.status().done, 30, message=handle.id)
            status = handle.status()
            assert status.status == "failed", handle.id
            assert status.error is not None and status.error["type"] == UNREADABLE
        letters = app.dead_letters.list()
        reasons = [letter.reason for letter in letters]
        assert sum("undecodable message" in reason for reason in reasons) == 3, reasons
        assert {letter.data for letter in letters} >= {b"\xff garbage", malformed_id}
        assert sum("unreadable" in reason for reason in reasons) == 4, reasons
        assert worker.poll() is None  # the worker stayed up
        assert r.xpending(queue, "workers")["pending"] == 0  # every poison acknowledged
    finally:
        worker.kill()
        worker.wait()


def test_background_roles_go_on_past_a_corrupt_log_and_a_bug(
    app: App, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from structlog.testing import capture_logs

    from streamflow import WithDelay
    from streamflow.runtime.sweep import StuckSweep

    @app.actor(queue="nobody-serves")
    def stranded() -> None:
        pass

    @app.actor(max_retries=2, min_backoff=0.05)
    def flaky(key: str) -> str:
        if r.incr(key) < 3:
            raise RuntimeError("not yet")
        return "third time"

    @app.actor
    def later() -> str:
        return "later"

    # A workflow the stuck sweep will reach, whose log cannot be read.
    corrupt = stranded.send()
    _append_raw(r, app, corrupt.id, b"\x10\xff\xfe not an event")
    # And a bug in the sweep, once.
    sweep, failures = StuckSweep.run, iter([RuntimeError("a bug")])

    def buggy(self: StuckSweep, shards: tuple[int, ...]) -> int:
        error = next(failures, None)
        if error is not None:
            raise error
        return sweep(self, shards)

    monkeypatch.setattr(StuckSweep, "run", buggy)
    with (
        capture_logs() as logs,
        app.worker(queues=["default"], stuck_after_s=0.1, sweep_interval_s=0.1),
    ):
        wait_until(lambda: corrupt.status().done, 15, message="the sweep to end it")
        # The timer of this very process still moves delays and retries.
        assert app.submit(WithDelay(later.message(), 0.2)).result(timeout=15) == "later"
        assert flaky.send("attempts").result(timeout=15) == "third time"
    assert corrupt.status().status == "failed"
    assert any(e["event"] == "role_failed" and e["role"] == "timer" for e in logs)


def test_status_ls_and_audit_show_an_unreadable_workflow(
    app: App, r: redis.Redis, redis_url: str
) -> None:
    @app.actor
    def fine() -> str:
        return "fine"

    good = fine.send()
    broken = app.submit(Chain(fine.message(), fine.message()))
    _append_raw(r, app, broken.id, b"\x10\xff\xfe not an event")
    with app.worker():
        assert good.result(timeout=30) == "fine"
        wait_until(lambda: broken.status().done, 15, message="it to end")
    run = [sys.executable, "-m", "streamflow.cli", "--log-level", "warning"]

    def cli(*args: str) -> Any:
        return subprocess.run([*run, *args, "--url", redis_url], capture_output=True, text=True)

    status = cli("status", broken.id)
    assert "failed" in status.stdout and UNREADABLE in status.stdout
    listed = cli("ls", "--status", "failed")
    assert broken.id in listed.stdout
    audited = cli("audit", "--all")
    assert audited.returncode == 1
    assert f"{broken.id}  unreadable:" in audited.stdout
    assert "1 with violations" in audited.stdout and "Traceback" not in audited.stderr
