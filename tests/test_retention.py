"""Result lifetime: finished workflows are removed after their retention, by a sweep."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from streamflow import App, Chain, ResultFailure, ResultMissing
from streamflow.model.events import TaskSucceeded
from streamflow.model.schema import expiry_member
from streamflow.runtime.timer import sweep_expired
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

RETENTION_S = 1.0


@pytest.fixture
def app(r: redis.Redis, redis_url: str) -> Iterator[App]:
    application = App(redis_url, retention=RETENTION_S)
    yield application
    application.close()


def test_sweep_removes_only_finished_workflows(app: App, r: redis.Redis) -> None:
    @app.actor
    def quick() -> int:
        return 1

    @app.actor(queue="later")
    def never_run() -> int:
        return 2

    with app.worker(queues=["default"]):
        done = quick.send()
        assert done.get_result(block=True, timeout=10) == 1
        running = never_run.send()  # nobody reads "later": stays running
        tombstone = app.keys.tombstone(done.id)
        wait_until(lambda: r.exists(tombstone), 10, message="sweep")
        # Read while the tombstone lasts: no longer than the workflow's retention.
        assert 0 < r.pttl(tombstone) <= RETENTION_S * 1000
        with pytest.raises(ResultMissing, match="expired") as info:
            done.get_result()
        assert info.value.reason == "expired"
        # A retried submit of an expired id is refused, never recreated.
        app.submit(quick.message(), workflow_id=done.id)
        assert not r.exists(app.keys.log(done.id))
    assert not r.exists(app.keys.archive(done.id))
    assert running.status().status == "running"
    assert r.exists(app.keys.log(running.id))


def test_retention_per_workflow_and_per_actor(app: App, r: redis.Redis) -> None:
    @app.actor(result_ttl=3600)
    def kept() -> int:
        return 1

    @app.actor
    def plain() -> int:
        return 2

    with app.worker():
        by_actor = kept.send()
        by_workflow = app.submit(plain.message(), retention=3600)
        by_app = plain.send()
        for handle in (by_actor, by_workflow, by_app):
            handle.get_result(block=True, timeout=10)
        wait_until(lambda: r.exists(app.keys.tombstone(by_app.id)), 10, message="sweep")
    assert sweep_expired(app.store, [0]) == 0
    assert by_actor.get_result() == 1
    assert by_workflow.get_result() == 2
    member = expiry_member(by_actor.id, by_actor.snapshot().definition.hash, 3_600_000)
    expiry: Any = r.zscore(app.keys.expiry(0), member)
    assert expiry > r.time()[0] * 1000 + 3_000_000


def test_unknown_id_is_unknown_not_expired(app: App) -> None:
    with pytest.raises(ResultMissing, match="unknown"):
        app.handle("0-00ff").get_result()


def test_large_results_are_stored_out_of_line(redis_url: str, r: redis.Redis) -> None:
    app = App(redis_url, large_result_bytes=1000, max_result_bytes=100_000)

    @app.actor
    def big(n: int) -> str:
        return os.urandom(n // 2).hex()  # incompressible enough to stay large

    @app.actor
    def length(text: str) -> int:
        return len(text)

    with app.worker():
        handle = app.submit(Chain(big.message(5000), length.message()))
        assert handle.get_result(block=True, timeout=10) == 5000
        alone = big.send(3000)
        assert len(alone.get_result(block=True, timeout=10)) == 3000
        too_big = big.send(400_000)
        with pytest.raises(ResultFailure, match="ResultTooLarge") as info:
            too_big.get_result(block=True, timeout=10)
    assert "over the limit of 100000" in info.value.error["message"]
    (stored,) = [e.event for e in handle.history() if isinstance(e.event, TaskSucceeded)][:1]
    assert stored.result is None and stored.result_ref == "0:1"
    assert r.hexists(app.keys.results(handle.id), "0:1")
    # The log entry stays small; the bytes are in the workflow's results hash.
    assert r.strlen(app.keys.archive(handle.id)) < 1000
    app.close()
