"""What a signal node's timeout is: the failure its message records (the node never
runs; see ``TaskNode.signal``)."""

from __future__ import annotations

from streamflow.model.definition import TaskNode
from streamflow.model.errors import SignalTimeout


def timed_out(task: TaskNode) -> SignalTimeout:
    """The error a signal node's wait ends with."""
    seconds = (task.options.time_limit_ms or 0) / 1000
    return SignalTimeout(f"no signal {task.signal!r} within {seconds:g} s")
