"""Per-message retry and time-limit options (``message_with_options``), in place of the
actor's, as dramatiq's message options are: recorded in the definition, obeyed by the
worker, checked when the message is built."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
import redis

from streamflow import App, ResultFailure, Retry
from streamflow.model.events import TaskFailed
from streamflow.model.options import ActorOptions
from streamflow.model.retry import backoff_ms, next_attempt
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def test_a_message_retries_and_backs_off_as_it_says(app: App, r: redis.Redis) -> None:
    @app.actor(min_backoff=30.0)  # no retry, and a long backoff, by the actor's options
    def flaky(key: str) -> str:
        if r.incr(key) < 3:
            raise RuntimeError("not yet")
        return key

    retried = flaky.message_with_options(args=("a",), max_retries=2, min_backoff=0.01)
    assert retried.options.max_retries == 2 and retried.options.min_backoff_ms == 10
    assert flaky.message("b").options.max_retries == 0  # the actor's stay as they were
    with app.worker(concurrency=2):
        handle = app.submit(retried)
        assert handle.get_result(block=True, timeout=30) == "a"
        plain = app.submit(flaky.message("b"))
        with pytest.raises(ResultFailure, match="not yet"):
            plain.get_result(block=True, timeout=30)  # the actor's: no retry
    failed = [e.event.attempt for e in handle.history() if isinstance(e.event, TaskFailed)]
    assert failed == [1, 2]  # two retries, 10 ms apart or so, then success
    assert [e.event.attempt for e in plain.history() if isinstance(e.event, TaskFailed)] == [1]


def test_a_message_time_limit_stops_its_body(app: App) -> None:
    @app.actor
    def slow(seconds: float) -> str:
        time.sleep(seconds)
        return "done"

    with app.worker(concurrency=2):
        limited = app.submit(slow.message_with_options(args=(5.0,), time_limit=0.2))
        with pytest.raises(ResultFailure, match="TimeLimitExceeded"):
            limited.get_result(block=True, timeout=30)
        assert app.submit(slow.message(0.0)).get_result(block=True, timeout=30) == "done"


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_retries", -1), ("max_retries", 1.5), ("max_retries", True), ("time_limit", -2)],
)
def test_wrong_message_options_are_refused_naming_them(app: App, option: str, value: Any) -> None:
    @app.actor
    def anything() -> None:
        pass

    with pytest.raises(ValueError, match=f"{option} must be") as info:
        anything.message_with_options(**{option: value})
    assert repr(value) in str(info.value)


def test_callbacks_named_by_actor_name(app: App, r: redis.Redis) -> None:
    @app.actor
    def record(*parts: Any) -> None:
        r.rpush("recorded", repr(parts[-1]))

    @app.actor
    def value(x: int) -> int:
        return x

    @app.actor
    def fails() -> None:
        raise ValueError("broken")

    by_name = value.message_with_options(args=(7,), on_success="record")
    assert by_name.on_success == value.message_with_options(args=(7,), on_success=record).on_success
    with app.worker(concurrency=2):
        assert app.submit(by_name).get_result(block=True, timeout=30) == 7
        failed = app.submit(fails.message(), on_failure="record")
        with pytest.raises(ResultFailure):
            failed.get_result(block=True, timeout=30)
        wait_until(lambda: r.llen("recorded") == 2, 30, message="both callbacks")
    assert r.lrange("recorded", 0, 0) == [b"7"]


def test_a_callback_name_no_actor_has_is_refused_naming_the_known(app: App) -> None:
    @app.actor
    def value(x: int) -> int:
        return x

    with pytest.raises(ValueError, match=r"'recrod', which is not registered.*value"):
        value.message_with_options(args=(1,), on_failure="recrod")
    with pytest.raises(ValueError, match="'nobody'"):
        app.submit(value.message(1), on_failure="nobody")
    with pytest.raises(TypeError, match="an actor or an actor's name"):
        value.message_with_options(args=(1,), on_success=42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "max_retries", "delay_ms"),
    [
        (Retry(delay=0.25), 1, 250),  # the delay asked for, not the backoff
        (Retry(), 1, "backoff"),
        (Retry(delay=datetime.timedelta(minutes=1)), 1, 60_000),
        (Retry(delay=0.25), 0, None),  # counted against max_retries, as in dramatiq
    ],
    ids=repr,
)
def test_a_retry_asked_for_runs_after_its_delay(
    error: Retry, max_retries: int, delay_ms: int | str | None
) -> None:
    options = ActorOptions(max_retries=max_retries, min_backoff_ms=1000)
    decided = next_attempt(attempt=1, options=options, error=error, jitter=1.0)
    expected = backoff_ms(1, options, 1.0) if delay_ms == "backoff" else delay_ms
    assert decided.delay_ms == expected and not decided.later


def test_a_retry_with_a_wrong_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="delay must be"):
        Retry(delay=-1)


def test_an_actor_asks_for_its_retry_and_the_log_records_the_delay(
    app: App, r: redis.Redis
) -> None:
    @app.actor(max_retries=1, min_backoff=30.0)
    def later(key: str) -> str:
        if r.incr(key) == 1:
            raise Retry("the partner is busy", delay=0.05)
        return key

    with app.worker(concurrency=2):
        handle = app.submit(later.message("k"))
        assert handle.get_result(block=True, timeout=30) == "k"  # not after 30 s
    (failed,) = [e.event for e in handle.history() if isinstance(e.event, TaskFailed)]
    assert failed.retry_delay_ms == 50
    assert (failed.error["type"], failed.error["message"]) == ("Retry", "the partner is busy")


def test_an_eta_is_the_delay_until_then(app: App) -> None:
    @app.actor
    def ping() -> str:
        return "pong"

    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
    delay_ms = ping.message_with_options(eta=soon).delay_ms
    assert 20_000 < delay_ms <= 30_000  # (what building the message took, off)
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    assert ping.message_with_options(eta=past).delay_ms == 0  # due: at once
    with app.worker(concurrency=1):
        handle = ping.send_with_options(eta=past)
        assert handle.get_result(block=True, timeout=30) == "pong"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"eta": datetime.datetime(2030, 1, 1)}, "timezone-aware"),
        ({"eta": "tomorrow"}, "timezone-aware"),
        ({"eta": datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC), "delay": 1}, "not both"),
    ],
)
def test_a_wrong_eta_is_refused_naming_it(app: App, options: dict[str, Any], says: str) -> None:
    @app.actor
    def ping() -> None:
        pass

    with pytest.raises(ValueError, match=says):
        ping.message_with_options(**options)
    with pytest.raises(ValueError, match=says):
        ping.send_with_options(**options)
