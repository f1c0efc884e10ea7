"""
What the engine refuses on a real Redis: an unencodable argument or a non-canvas at
submit (nothing written), a corrupt or unknown message at the worker (a dead letter).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from streamflow import App, Chain, EncodeError, Group, ResultFailure
from tests.helpers import run_worker
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def test_unencodable_argument_writes_nothing(app: App, r: redis.Redis) -> None:
    @app.actor
    def add(x: Any, y: Any) -> Any:
        return x + y

    class Foo:
        pass

    before = r.dbsize()
    with pytest.raises(
        EncodeError, match=r"args\[1\] of add: object of type Foo cannot be encoded"
    ):
        app.submit(Chain(add.message(1, 2), add.message(1, Foo())))
    assert r.dbsize() == before


def test_non_canvas_is_a_type_error(app: App) -> None:
    with pytest.raises(TypeError, match="got 42 of type int"):
        app.submit(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'oops'"):
        Group("oops")  # type: ignore[arg-type]


def test_corrupt_queue_message_goes_to_dead_letters(app: App, r: redis.Redis) -> None:
    @app.actor
    def f() -> int:
        return 7

    queue = app.keys.queue(0, "default")
    with run_worker(app):
        r.xadd(queue, {"m": b"\xffnot a message"})
        wait_until(lambda: r.xlen("sf:dead") == 1, 10, message="dead letter")
        assert app.submit(f.message()).result(timeout=10) == 7
    ((_, fields),) = r.xrange("sf:dead")
    assert fields[b"data"] == b"\xffnot a message"
    assert b"undecodable" in fields[b"reason"]
    assert r.xlen(queue) == 0


def test_unknown_actor_fails_as_poison(app: App, r: redis.Redis, redis_url: str) -> None:
    @app.actor
    def mystery() -> None:
        raise AssertionError("this worker must not know me")

    handle = app.submit(mystery.message())
    other = App(redis_url)

    @other.actor
    def known() -> None:
        pass

    with (
        capture_logs() as logs,
        run_worker(other, lease_ms=100, max_unknown_deliveries=3),
        pytest.raises(ResultFailure, match="unknown after 3 deliveries"),
    ):
        handle.result(timeout=30)
    ((_, fields),) = r.xrange("sf:dead")
    assert b"mystery" in fields[b"reason"]
    assert any(log["event"] == "message_dead_lettered" for log in logs)
    other.close()
