"""Redis loses its data (a restart without its files, FLUSHALL, a failover to an empty
replica): said loudly, once; new workflows run again within seconds, nothing restarted;
workflows whose state was lost read as unknown instead of being waited for."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, Chain, ResultMissing, ResultTimeout
from streamflow.model import schema
from streamflow.model.messages import shard_of
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def test_new_workflows_run_again_after_redis_lost_its_data(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    def stub(*args: Any) -> Any:
        raise AssertionError("runs in the worker process only")

    c = app.actor(stub, actor_name="counted").message
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "streamflow.cli", "--log-level", "info", "worker"]
    command += ["tests.sample_app:app", "--url", redis_url, "--processes", "1"]
    env = {**os.environ, "STREAMFLOW_REDIS_URL": redis_url}
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stderr=log.open("wb"))
    try:
        before = app.submit(Chain(c("a"), c("b")))
        assert before.result(timeout=30) == "b"
        waiting = app.submit(Chain(c("x"), c("y")))  # the same shape, soon lost
        r.flushall()
        with capture_logs() as logs:
            started = time.monotonic()
            # Round the shards and more: the first shards' definitions were stored.
            count = max(20, app.shards + 2)
            after = [app.submit(Chain(c(f"a{i}"), c(f"b{i}"))) for i in range(count)]
            try:
                results = [h.result(timeout=30) for h in after]
            except ResultTimeout as stuck:  # where it stands, and what the worker said
                history = "\n".join(map(str, app.history(stuck.workflow_id)))
                tail = log.read_text()[-4000:]
                raise AssertionError(f"{stuck}\n{history}\nworker:\n{tail}") from stuck
            assert results == [f"b{i}" for i in range(count)]
        assert time.monotonic() - started < 15  # within seconds, with nothing restarted
        assert worker.poll() is None
        # Said by the submitter once per shard whose stored definition was gone (one on
        # one Redis; a cluster's shards went round) ...
        stored_on = {shard_of(before.id), shard_of(waiting.id)}
        lost = [e for e in logs if e["event"] == "redis_state_lost"]
        assert [e["lost"] for e in lost] == ["definition"] * len(stored_on)
        assert app.store.losses == len(stored_on)
        # ... and once by the worker (its consumer groups were gone).
        wait_until(lambda: "redis_state_lost" in log.read_text(), 10)
        assert log.read_text().count("redis_state_lost") == 1
        # A workflow whose state was lost reads as unknown; it is not waited for.
        with pytest.raises(ResultMissing, match="unknown"):
            waiting.result(timeout=30)
        with pytest.raises(ResultMissing, match="unknown"):
            waiting.status()
    finally:
        worker.kill()
        worker.wait()


def test_a_submit_clears_an_index_left_without_its_log(app: App, r: redis.Redis) -> None:
    @app.actor
    def double(x: int) -> int:
        return 2 * x

    workflow_id = app.new_workflow_id()
    idx = app.keys.idx(workflow_id)
    r.hset(idx, mapping={schema.STATUS: schema.FAILED, schema.LENGTH: 9, "left-over": 1})
    handle = app.submit(Chain(double.message(1), double.message()), workflow_id=workflow_id)
    assert r.hget(idx, "left-over") is None
    assert r.hget(idx, schema.STATUS) == schema.RUNNING.encode()
    with app.worker(concurrency=2):
        assert handle.result(timeout=30) == 4


def test_a_definition_redis_lost_is_stored_again_and_counted_once(app: App, r: redis.Redis) -> None:
    @app.actor
    def double(x: int) -> int:
        return 2 * x

    first = app.submit(Chain(double.message(1), double.message()))
    shard = shard_of(first.id)
    def_hash = first.snapshot().definition.hash
    counts = app.keys.definitions(shard)
    assert r.hget(counts, def_hash) == b"1"
    # The definition and its count are lost (a FLUSHALL): the next submit of the same
    # shape is refused by the script (NODEF), leaves no count behind, and is made again
    # with the definition.
    r.delete(app.keys.definition(shard, def_hash), counts)
    second = app.submit(Chain(double.message(2), double.message()), workflow_id=f"{first.id}b")
    assert shard_of(second.id) == shard
    assert r.hget(counts, def_hash) == b"1"
    assert r.exists(app.keys.definition(shard, def_hash))
    assert app.store.losses == 1
    with app.worker(concurrency=2):
        assert second.result(timeout=30) == 8
