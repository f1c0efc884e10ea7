"""What a signal node's timeout is: the failure its message records (the node never
runs; see ``TaskNode.signal``)."""

from __future__ import annotations

from streamflow.model.definition import TaskNode
from streamflow.model.errors import SignalTimeout


def timed_out(task: TaskNode) -> SignalTimeout:
    """The error a signal node's wait ends with."""
    seconds = (task.options.time_limit_ms or 0) / 1000
    return SignalTimeout(f"no signal {task.signal!r} within {seconds:g} s")


def message_delay(task: TaskNode, delay_ms: int) -> int | None:
    """How long after its cause the message of an enqueue with ``delay_ms`` is due, or
    None if it sends none: a signal node's message is its timeout, due when the wait
    ends, and without a timeout it has none."""
    if task.signal is None:
        return delay_ms
    if task.options.time_limit_ms is None:
        return None
    return delay_ms + task.options.time_limit_ms
