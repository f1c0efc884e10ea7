"""dramatiq-workflow's API over a streamflow App: change the imports, keep the code.

    from streamflow.compat.dramatiq_workflow import Chain, Group, WithDelay, Workflow

Tasks are messages of ``streamflow.compat.dramatiq`` actors (or of streamflow's own). As
in dramatiq-workflow, a chain passes no results on: each message runs with its own
arguments (streamflow's native ``Chain`` pipes them; use it when you want that), and
``WithDelay`` takes milliseconds. The barriers are streamflow's, recorded in the
workflow's log: ``WorkflowMiddleware`` and its rate-limiter backend are accepted and
change nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from streamflow.api import canvas as native
from streamflow.api.handles import WorkflowHandle
from streamflow.compat.brokers import Middleware, RedisBroker, get_broker
from streamflow.compat.units import seconds_of

__all__ = ["Chain", "Group", "WithDelay", "Workflow", "WorkflowMiddleware"]


class Chain:
    """Tasks run one after another (no results passed on); ``Chain()`` does nothing."""

    def __init__(self, *tasks: Any) -> None:
        self.tasks = list(tasks)

    def __repr__(self) -> str:
        return f"Chain({self.tasks})"


class Group:
    """Tasks run in parallel; what follows waits for all of them."""

    def __init__(self, *tasks: Any) -> None:
        self.tasks = list(tasks)

    def __repr__(self) -> str:
        return f"Group({self.tasks})"


class WithDelay:
    """``task``, started ``delay`` milliseconds after it would have been."""

    def __init__(self, task: Any, delay: int) -> None:
        self.task = task
        self.delay = delay

    def __repr__(self) -> str:
        return f"WithDelay({self.task}, delay={self.delay})"


class WorkflowMiddleware(Middleware):
    """dramatiq-workflow's middleware: streamflow's barriers need none."""

    def __init__(self, rate_limiter_backend: Any = None, **_options: Any) -> None:
        self.rate_limiter_backend = rate_limiter_backend


def to_canvas(workflow: Any) -> native.Canvas:
    """streamflow's canvas for a dramatiq-workflow one.

    Raises:
        TypeError: a part that is neither a message nor one of the classes above.
    """
    if isinstance(workflow, native.Message):
        return dataclasses.replace(workflow, pipe_ignore=True)
    if isinstance(workflow, Chain):
        return native.Chain(*map(to_canvas, workflow.tasks))
    if isinstance(workflow, Group):
        return native.Group(*map(to_canvas, workflow.tasks))
    if isinstance(workflow, WithDelay):
        return native.WithDelay(to_canvas(workflow.task), seconds_of(workflow.delay, "delay"))
    raise TypeError(
        f"a workflow is made of Chain, Group, WithDelay and actor messages "
        f"(got {workflow!r} of type {type(workflow).__name__})"
    )


class Workflow:
    """A workflow to run on ``broker`` (default: ``get_broker()``)."""

    def __init__(self, workflow: Any, broker: RedisBroker | None = None) -> None:
        self.workflow = workflow
        self.canvas = to_canvas(workflow)
        self.broker = broker

    def run(self) -> WorkflowHandle[Any]:
        """Submit it; returns its handle (dramatiq-workflow returns nothing: wait on
        this one if you like)."""
        broker = self.broker if self.broker is not None else get_broker()
        return broker.app.submit(self.canvas)

    def __repr__(self) -> str:
        return f"Workflow({self.workflow})"
