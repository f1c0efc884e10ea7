"""Hooks: plug error reporting, metrics or tracing into the worker.

Subclass ``Hooks``, override what you need, and register it with ``App(hooks=[...])``
or ``app.add_hooks(...)``. A hook that raises is logged and otherwise ignored: it never
changes a task's outcome.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from streamflow.logs import get_logger

log = get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskInfo:
    """The task a hook is called about."""

    workflow_id: str
    node: int
    attempt: int
    actor: str
    args: Sequence[Any]
    """Positional arguments, the piped input included."""
    kwargs: Mapping[str, Any]


class Hooks:
    """Called by workers around tasks and when a workflow ends. Every method is optional."""

    def before_task(self, task: TaskInfo) -> None:
        """Just before the task's body runs (in the thread or event loop that runs it)."""

    def after_task(
        self, task: TaskInfo, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Just after the body returned ``result`` or raised ``exception``."""

    def after_workflow(self, workflow_id: str, status: str) -> None:
        """Once, in the process whose projection recorded the workflow's end
        (``completed``, ``failed`` or ``cancelled``)."""


def call_hooks(hooks: Sequence[Hooks], method: str, *args: Any, **kwargs: Any) -> None:
    """Call ``method`` on every hook; a hook's exception is logged, never raised."""
    for hook in hooks:
        try:
            getattr(hook, method)(*args, **kwargs)
        except Exception:
            log.exception("hook_failed", hook=type(hook).__name__, method=method)
