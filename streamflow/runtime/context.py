"""What a running task can ask about itself: ``streamflow.current_task()``."""

from __future__ import annotations

import contextvars
import dataclasses


@dataclasses.dataclass(slots=True, kw_only=True)
class TaskContext:
    """The task running in this thread (sync actors) or asyncio task (async actors)."""

    workflow_id: str
    node: int
    attempt: int
    actor: str
    _cancelled: bool = False
    """Set by the worker's watch (a plain flag: one writer, read under the GIL)."""

    @property
    def cancelled(self) -> bool:
        """True once its workflow was cancelled (or otherwise ended): stop early."""
        return self._cancelled

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
