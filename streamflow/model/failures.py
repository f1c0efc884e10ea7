"""Failures as plain data: what a failed task leaves in results and callbacks."""

from __future__ import annotations

import dataclasses
import traceback
from typing import Any

from streamflow.model.events import TaskFailed


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """A task that failed for good, as a value (never a pickled exception).

    Stands in a workflow's results for a message with ``allow_failure=True``.
    """

    actor: str
    node: int
    attempt: int
    type: str
    """The exception's type name."""
    message: str
    traceback: str

    @classmethod
    def from_event(cls, event: TaskFailed, actor: str) -> Failure:
        error = event.error
        return cls(
            actor=actor,
            node=event.node,
            attempt=event.attempt,
            type=str(error.get("type", "")),
            message=str(error.get("message", "")),
            traceback=str(error.get("traceback", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict (what callbacks receive)."""
        return dataclasses.asdict(self)


def error_data(exc: BaseException) -> dict[str, Any]:
    """An exception as a ``TaskFailed`` records it: ``type``, ``message``, ``traceback``."""
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def retry_info(failure: dict[str, Any], attempt: int, max_retries: int) -> dict[str, Any]:
    """What an ``on_retry_exhausted`` callback receives after its message's data: the
    failure (as ``Failure.to_dict``), with ``retries`` (the attempts after the first) and
    ``max_retries``, as dramatiq's ``retry_info`` has them."""
    return {**failure, "retries": attempt - 1, "max_retries": max_retries}
