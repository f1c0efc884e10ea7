"""Plain tasks at the price of a queue: quiet by default, many submitted in one round
trip, a finished result read in one, many results read together, and every waiter of
an App served by one subscription."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from streamflow import App, Group
from tests.helpers import command_calls, masters, pattern_subscriptions

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def _commands(r: redis.Redis) -> dict[str, int]:
    return command_calls(r)


def _spent(r: redis.Redis, before: dict[str, int]) -> dict[str, int]:
    after = _commands(r)
    spent = {name: calls - before.get(name, 0) for name, calls in after.items()}
    spent["info"] -= len(masters(r))  # this call's own INFO, on each master
    return {name: calls for name, calls in spent.items() if calls}


def test_submit_many_and_results_read_many_in_few_round_trips(app: App, r: redis.Redis) -> None:
    @app.actor
    def double(x: int) -> int:
        return 2 * x

    with app.worker(concurrency=8):
        handles = app.submit_many([double.message(i) for i in range(1000)])
        assert app.results(handles[:10], timeout=30) == [2 * i for i in range(10)]
        app.results(handles, timeout=60)
    before = _commands(r)
    assert app.results(handles) == [2 * i for i in range(1000)]
    # One GET (the archive) and one XRANGE (a live log) per workflow, 500 per trip.
    assert _spent(r, before) == {"get": 1000, "xrange": 1000}


def test_submit_many_checks_every_canvas_before_it_writes(app: App, r: redis.Redis) -> None:
    @app.actor
    def one(x: int) -> int:
        return x

    keys = r.dbsize()
    with pytest.raises(TypeError, match="must be a Message"):
        app.submit_many([one.message(1), "nope", one.message(2)])  # type: ignore[list-item]
    assert r.dbsize() == keys


def test_a_finished_result_costs_one_round_trip_on_a_pooled_connection(
    app: App, r: redis.Redis
) -> None:
    @app.actor
    def one() -> int:
        return 1

    with app.worker():
        handles = [one.send() for _ in range(20)]
        app.results(handles, timeout=30)
    for handle in handles[:2]:
        handle.result(timeout=10)  # the definition is known from now on
    connections: Any = r.info("stats")["total_connections_received"]
    before = _commands(r)
    assert [handle.result(timeout=10) for handle in handles] == [1] * 20
    assert _spent(r, before) == {"hget": 20, "get": 20}  # one round trip each
    assert r.info("stats")["total_connections_received"] == connections


def test_every_waiter_of_an_app_shares_one_subscription(app: App, r: redis.Redis) -> None:
    gate = threading.Event()

    @app.actor
    def held(i: int) -> int:
        gate.wait(30)
        return i

    # Other tests' processes may hold subscriptions of their own on this server.
    others = pattern_subscriptions(r)
    other_clients = len([c for m in masters(r) for c in m.client_list(_type="pubsub")])
    with app.worker(concurrency=50):
        handles = [held.send(i) for i in range(50)]
        results: list[Any] = [None] * 50

        def wait(i: int) -> None:
            results[i] = handles[i].result(timeout=60)

        waiters = [threading.Thread(target=wait, args=(i,)) for i in range(50)]
        for waiter in waiters:
            waiter.start()
        subscribers = [c for m in masters(r) for c in m.client_list(_type="pubsub")]
        assert pattern_subscriptions(r) == others + 1
        assert len(subscribers) == other_clients + 1
        gate.set()
        for waiter in waiters:
            waiter.join(60)
    assert results == list(range(50))
    assert app.submit(Group()).result(timeout=10) == []


@pytest.mark.parametrize(("level", "said"), [(None, False), ("debug", True)])
def test_the_library_says_nothing_unless_asked(
    redis_url: str, r: redis.Redis, level: str | None, said: bool
) -> None:
    program = (
        "from streamflow import App\n"
        f"app = App({redis_url!r})\n"
        "one = app.actor(lambda: 1, actor_name='one')\n"
        "one.send()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "STREAMFLOW_LOG_LEVEL"}
    if level:
        env["STREAMFLOW_LOG_LEVEL"] = level
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert ("workflow_submitted" in done.stderr) is said, done.stderr
    if not said:
        assert done.stderr == ""


def test_a_one_message_canvas_is_compiled_once_per_shape(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamflow.api import shapes

    compiled: list[Any] = []
    compile_canvas = shapes.compile_canvas

    def counted(canvas: Any, **kwargs: Any) -> Any:
        compiled.append(canvas)
        return compile_canvas(canvas, **kwargs)

    monkeypatch.setattr(shapes, "compile_canvas", counted)

    @app.actor
    def scale(x: int, factor: int = 1) -> int:
        return x * factor

    with app.worker():
        handles = [scale.send(i, factor=i % 3) for i in range(30)]
        handles.append(app.submit(scale.message(5), retention=60))  # another shape
        assert app.results(handles, timeout=30) == [i * (i % 3) for i in range(30)] + [5]
    assert len(compiled) == 2
    assert handles[-1].history()[0].event.options["retention_ms"] == 60_000
