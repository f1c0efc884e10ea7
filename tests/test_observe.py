"""The observer seam: each observer is told only what it listens to, and one that
raises changes nothing for the others (nor for the worker)."""

from __future__ import annotations

from structlog.testing import capture_logs

from streamflow.runtime.observe import Observer, Observers


class Counting(Observer):
    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []

    def workflow_ended(self, workflow_id: str, status: str) -> None:
        self.ended.append((workflow_id, status))


class Broken(Observer):
    def workflow_ended(self, workflow_id: str, status: str) -> None:
        raise RuntimeError("a bug in an observer")


def test_a_raising_observer_is_logged_and_the_others_are_told() -> None:
    counting = Counting()
    observers = Observers([Broken(), counting])
    with capture_logs() as logs:
        observers.workflow_ended("0-ab", "completed")
        observers.redis_error("record")  # nobody listens: nothing is called
    assert counting.ended == [("0-ab", "completed")]
    assert [(e["event"], e["observer"], e["method"]) for e in logs] == [
        ("observer_failed", "Broken", "workflow_ended")
    ]


def test_only_what_an_observer_overrides_is_called() -> None:
    observers = Observers([Counting()])
    observers.add(Broken())
    assert observers.listening() == {"workflow_ended": 2}
