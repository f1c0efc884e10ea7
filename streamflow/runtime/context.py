"""What a running task can ask about itself: ``streamflow.current_task()``."""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable
from typing import Any

ChildStarter = Callable[["TaskContext", Any, bool, int], Any]
"""How a worker starts a child workflow for a task (``App.start_child``): task,
canvas, detached, and how many children the run had started before."""


@dataclasses.dataclass(slots=True, kw_only=True)
class TaskContext:
    """The task running in this thread (sync actors) or asyncio task (async actors)."""

    workflow_id: str
    node: int
    attempt: int
    actor: str
    _cancelled: bool = False
    """Set by the worker's watch (a plain flag: one writer, read under the GIL)."""
    starter: ChildStarter | None = dataclasses.field(default=None, repr=False)
    """What ``submit`` calls (None where no worker runs the task)."""
    _children: int = 0

    @property
    def cancelled(self) -> bool:
        """True once its workflow was cancelled (or otherwise ended): stop early."""
        return self._cancelled

    def submit(self, canvas: Any, *, detached: bool = False) -> Any:
        """Start ``canvas`` (any canvas) as a child workflow of this task's workflow and
        return its ``WorkflowHandle`` at once (``handle.result()`` waits for it).

        The child is recorded in this workflow's log (``ChildStarted``) and names its
        parent in its own ``WorkflowSubmitted``. Cancelling this workflow cancels it,
        unless ``detached``. A run delivered again starts nothing new: the k-th child a
        run starts has an id derived from the workflow, node, attempt and k, so start
        children in the same order on every run.

        Raises:
            RuntimeError: no worker runs this task (as in the testing kit's bodies).
            TypeError: ``canvas`` is not a canvas.
            ChildError: this task's workflow has ended.
        """
        if self.starter is None:
            raise RuntimeError(f"{self.actor}: only a task a worker runs can start a child")
        n, self._children = self._children, self._children + 1
        return self.starter(self, canvas, detached, n)

    def cancel(self) -> None:
        """Mark it cancelled (the worker's watch does, once its workflow has ended)."""
        self._cancelled = True


_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "streamflow_task", default=None
)


def current_task() -> TaskContext | None:
    """The task being run here, or None outside a task."""
    return _current.get()


def set_current(context: TaskContext | None) -> contextvars.Token[TaskContext | None]:
    return _current.set(context)


def reset_current(token: contextvars.Token[TaskContext | None]) -> None:
    _current.reset(token)
