"""streamflow.contrib.sentry: a real in-process worker on the test Redis, and the
Sentry SDK's own client with a transport that keeps the envelopes it is given (instead
of sending them), so the events are exactly what Sentry would receive.

sentry-sdk is imported in the fixture: the legs of scripts/test whose venvs lack the
extra still collect this module (and deselect its tests, which are not integration
tests); run there, they fail on the missing import."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streamflow import App, Chain, ResultFailure, current_task
from tests.waiting import wait_until


class Kept:
    """The events Sentry's client sent, and ``instrument``."""

    def __init__(self, instrument: Callable[..., Any]) -> None:
        self.events: list[dict[str, Any]] = []
        self.instrument = instrument


@pytest.fixture
def sentry() -> Iterator[Kept]:
    import sentry_sdk
    from sentry_sdk.transport import Transport

    from streamflow.contrib.sentry import instrument

    kept = Kept(instrument)

    class Keeping(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            kept.events += [item.payload.json for item in envelope.items if item.type == "event"]

    sentry_sdk.init(dsn="https://key@sentry.invalid/1", transport=Keeping())
    try:
        yield kept
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def run_workload(app: App) -> tuple[str, str]:
    """One workflow whose task fails for good on its second attempt, one whose task
    fails once and then succeeds; returns their ids."""

    @app.actor(max_retries=1, min_backoff=0.01, max_backoff=0.01)
    def doomed() -> None:
        raise ValueError(f"doomed, attempt {current_task().attempt}")

    @app.actor(queue="flaky", max_retries=2, min_backoff=0.01, max_backoff=0.01)
    def flaky() -> str:
        if current_task().attempt == 1:
            raise ConnectionError("flaky, once")
        return "fine"

    with app.worker(concurrency=2):
        failing = doomed.send()
        with pytest.raises(ResultFailure):
            failing.result(timeout=30)
        succeeding = flaky.send()
        assert succeeding.result(timeout=30) == "fine"
    return failing.id, succeeding.id


def tags_of(event: dict[str, Any]) -> dict[str, str]:
    return {k.removeprefix("streamflow."): v for k, v in event["tags"].items()}


def test_one_event_per_final_failure_with_its_exception_tags_and_breadcrumbs(
    app: App, sentry: Kept
) -> None:
    sentry.instrument(app)
    failing, _ = run_workload(app)

    [event] = wait_until(lambda: sentry.events, 10, message="a Sentry event")
    assert tags_of(event) == {
        "workflow_id": failing,
        "node": "0",
        "actor": "doomed",
        "attempt": "2",
        "queue": "default",
        "outcome": "failed",
    }
    [exception] = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "doomed, attempt 2")
    # The real traceback: it ends in the actor's body.
    assert exception["stacktrace"]["frames"][-1]["function"] == "doomed"
    crumbs = [crumb["message"] for crumb in event["breadcrumbs"]["values"]]
    assert crumbs == [
        "#1 WorkflowSubmitted",
        "#2 TaskEnqueued",
        "#3 TaskStarted",
        "#4 TaskFailed",
        "#5 TaskEnqueued",
        "#6 TaskStarted",
    ]
    retried = event["breadcrumbs"]["values"][3]["data"]
    assert retried["error"] == {"type": "ValueError", "message": "doomed, attempt 1"}
    assert retried["attempt"] == 1


def test_retries_are_reported_when_asked(app: App, sentry: Kept) -> None:
    sentry.instrument(app, report_retries=True)
    failing, succeeding = run_workload(app)

    events = wait_until(lambda: len(sentry.events) >= 3 and sentry.events, 10, message="3")
    seen = sorted(
        (tags_of(e)["workflow_id"], tags_of(e)["attempt"], tags_of(e)["outcome"]) for e in events
    )
    assert seen == sorted(
        [(failing, "1", "retried"), (failing, "2", "failed"), (succeeding, "1", "retried")]
    )
    flaky = next(e for e in events if tags_of(e)["workflow_id"] == succeeding)
    assert tags_of(flaky)["queue"] == "flaky"
    assert flaky["exception"]["values"][0]["type"] == "ConnectionError"


def test_a_failure_no_body_raised_is_reported_from_its_record(app: App, sentry: Kept) -> None:
    """An async body called with one argument too many (the piped result) fails before
    it runs, so no hook is told: the event is the recorded error."""
    sentry.instrument(app)

    @app.actor
    def one() -> int:
        return 1

    @app.actor
    async def takes_one(x: int) -> int:
        return x

    with app.worker():
        handle = app.submit(Chain(one.message(), takes_one.message(2)))
        with pytest.raises(ResultFailure):
            handle.result(timeout=30)

    [event] = wait_until(lambda: sentry.events, 10, message="a Sentry event")
    assert tags_of(event)["actor"] == "takes_one"
    assert tags_of(event)["node"] == "2"
    assert event["level"] == "error"
    assert event["message"].startswith("TypeError: ")
    assert event["fingerprint"] == ["streamflow", "takes_one", "TypeError"]
    assert "Traceback" in event["contexts"]["streamflow error"]["traceback"]
    assert "exception" not in event
