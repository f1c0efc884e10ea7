"""The dramatiq composition and results docs' examples, on streamflow (same shapes)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from streamflow import (
    App,
    Chain,
    Group,
    ResultFailure,
    ResultMissing,
    ResultTimeout,
    Worker,
    group,
    pipeline,
)
from streamflow.model.events import BarrierReleased, TaskEnqueued, TaskSucceeded
from tests.helpers import check_contract, definition_of, events_of


@pytest.fixture
def actors(app: App, r: redis.Redis) -> dict[str, Any]:
    @app.actor
    def add(x: int, y: int = 0) -> int:
        return x + y

    @app.actor
    def request(uri: str) -> str:
        return f"<html>{uri}</html>"

    @app.actor
    def count_words(text: str) -> int:
        return len(text.split("/"))

    @app.actor
    def store(key: str) -> None:
        r.rpush("stored", key)

    @app.actor
    def finalize(name: str) -> None:
        r.rpush("finalized", name)

    @app.actor
    def fail() -> None:
        raise ValueError("nope")

    return {f.name: f for f in (add, request, count_words, store, finalize, fail)}


@pytest.fixture
def worker(app: App, actors: dict[str, Any]) -> Iterator[Worker]:
    with app.worker(concurrency=4) as running:
        yield running


def test_pipeline_of_adds(actors: dict[str, Any], worker: Worker) -> None:
    add = actors["add"]
    pipe = add.message(1, 2) | add.message(3) | add.message(4)
    assert isinstance(pipe, pipeline)
    pipe.run()
    assert pipe.get_result(block=True, timeout=10) == 10
    assert pipe.get_results(block=True) == [3, 6, 10]
    assert len(pipe) == 3
    assert pipe.completed
    assert pipe.completed_count == 3


def test_pipeline_list_form_and_pipe_ignore(
    actors: dict[str, Any], worker: Worker, r: redis.Redis
) -> None:
    pipe = pipeline(
        [
            actors["request"].message("example.com/a/b"),
            actors["count_words"].message(),
            actors["store"].message_with_options(args=("done",), pipe_ignore=True),
        ]
    ).run()
    assert pipe.get_results(block=True, timeout=10) == ["<html>example.com/a/b</html>", 4, None]
    assert r.lrange("stored", 0, -1) == [b"done"]


def test_group_of_requests(actors: dict[str, Any], worker: Worker) -> None:
    request = actors["request"]
    g = group([request.message("https://example.com"), request.message("https://example.net")])
    g.run()
    assert g.get_results(block=True, timeout=10) == [
        "<html>https://example.com</html>",
        "<html>https://example.net</html>",
    ]
    g.wait(timeout=10)
    assert g.completed
    assert g.completed_count == 2
    assert len(g) == 2


def test_group_completion_callback_fires_once(
    app: App, actors: dict[str, Any], worker: Worker, r: redis.Redis
) -> None:
    request = actors["request"]
    g = group([request.message(f"u{i}") for i in range(20)])
    g.add_completion_callback(actors["finalize"].message("all fetched"))
    g.run()
    assert g.get_results(block=True, timeout=10) == [f"<html>u{i}</html>" for i in range(20)]
    assert r.lrange("finalized", 0, -1) == [b"all fetched"]
    history = g.handle.history()
    assert len(events_of(history, BarrierReleased)) == 1
    check_contract(definition_of(app, history), history)


def test_pipeline_and_group_run_with_a_delay(
    app: App, actors: dict[str, Any], worker: Worker, r: redis.Redis
) -> None:
    add, request = actors["add"], actors["request"]
    pipe = (add.message(1, 2) | add.message(3)).run(delay=0.2)
    g = group([request.message("a"), request.message("b")])
    g.add_completion_callback(actors["finalize"].message("both"))
    g.run(delay=datetime.timedelta(milliseconds=300))

    assert pipe.get_results(block=True, timeout=10) == [3, 6]
    assert pipe.completed_count == 2
    assert g.get_results(block=True, timeout=10) == ["<html>a</html>", "<html>b</html>"]
    assert g.completed_count == 2
    assert r.lrange("finalized", 0, -1) == [b"both"]
    # The delay is the first step's and every member's, recorded in the log.
    pipe_delays = [e.delay_ms for e in events_of(pipe.handle.history(), TaskEnqueued)]
    assert pipe_delays == [200, 0]
    group_delays = sorted(e.delay_ms for e in events_of(g.handle.history(), TaskEnqueued))
    assert group_delays == [0, 300, 300]  # the callback runs once both ran


def test_an_empty_chain_is_a_no_op(app: App, actors: dict[str, Any], worker: Worker) -> None:
    add = actors["add"]
    alone = app.submit(Chain())
    assert alone.get_result(block=True, timeout=10) is None
    assert alone.status().status == "completed"
    # As a step it is skipped: the next step receives what came before it.
    skipped = app.submit(Chain(add.message(1, 2), Chain(), add.message(10)))
    assert skipped.get_result(block=True, timeout=10) == 13
    # As a group member it passes its input on.
    member = app.submit(Chain(add.message(4), Group(Chain(), add.message(1))))
    assert member.get_result(block=True, timeout=10) == [4, 5]
    assert pipeline([]).run(app=app).get_results(block=True, timeout=10) == []


def test_nested_pipelines_and_groups(actors: dict[str, Any], worker: Worker) -> None:
    add = actors["add"]
    pipe = pipeline(
        [
            add.message(1, 1),
            group([add.message(10), pipeline([add.message(100), add.message(1000)])]),
            Group(add.message_with_options(args=(0, 0), pipe_ignore=True)),
        ]
    ).run()
    assert pipe.get_results(block=True, timeout=10) == [2, [12, 1102], [0]]


def test_send_and_get_result(actors: dict[str, Any], worker: Worker) -> None:
    handle = actors["add"].send(1, 2)
    assert handle.get_result(block=True, timeout=10) == 3
    assert handle.get_result() == 3


def test_result_errors(app: App, actors: dict[str, Any]) -> None:
    handle = actors["add"].send(1, 2)  # no worker yet
    with pytest.raises(ResultMissing, match="not finished") as missing:
        handle.get_result()
    assert missing.value.reason == "not finished"
    with pytest.raises(ResultTimeout, match=r"within 0\.1 s"):
        handle.get_result(block=True, timeout=0.1)
    with pytest.raises(ResultMissing, match="unknown"):
        app.handle("0-0123abcd").get_result()

    failing = actors["fail"].send()
    with app.worker(concurrency=2):
        with pytest.raises(ResultFailure) as failure:
            failing.get_result(block=True, timeout=10)
        assert handle.get_result(block=True, timeout=10) == 3
    assert failure.value.exception_type == "ValueError"
    assert failure.value.actor == "fail"
    assert failure.value.node == 0
    assert failure.value.attempt == 1
    assert "ValueError: nope" in str(failure.value.traceback)
    returned = failing.get_result(raise_on_error=False)
    assert isinstance(returned, ResultFailure)
    assert returned.error["message"] == "nope"


def test_results_are_in_the_log(app: App, actors: dict[str, Any], worker: Worker) -> None:
    g = group([actors["add"].message(i, i) for i in range(5)]).run()
    assert g.get_results(block=True, timeout=10) == [0, 2, 4, 6, 8]
    results = sorted(e.result for e in events_of(g.handle.history(), TaskSucceeded))
    assert results == [0, 2, 4, 6, 8]


def test_run_twice_is_refused(actors: dict[str, Any], worker: Worker) -> None:
    g = group([actors["add"].message(1)]).run()
    with pytest.raises(RuntimeError, match="already run"):
        g.run()
    with pytest.raises(RuntimeError, match="before run"):
        g.add_completion_callback(actors["add"].message(1))
