"""What a worker serves: an App, as the runtime sees it (no import of the API)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from streamflow.model.schedules import ScheduleSpec
from streamflow.runtime.context import TaskContext
from streamflow.runtime.hooks import Hooks
from streamflow.runtime.jobs import Runnable
from streamflow.runtime.observe import Observers
from streamflow.runtime.projector import Projector
from streamflow.runtime.tally import Tally
from streamflow.store.connection import Store


class Host(Protocol):
    """What a worker serves (an App): its store and projector, actors and hooks, and what
    observes the process's work (its stats among them)."""

    @property
    def store(self) -> Store: ...

    @property
    def projector(self) -> Projector: ...

    @property
    def actors(self) -> Mapping[str, Runnable]: ...

    @property
    def builtins(self) -> Mapping[str, Runnable]:
        """streamflow's own actors (a child-workflow node's run), by their ``@`` names."""
        ...

    @property
    def hooks(self) -> Sequence[Hooks]: ...

    def start_child(self, task: TaskContext, canvas: Any, detached: bool, n: int) -> Any:
        """``current_task().submit``: start a child workflow of the task's."""
        ...

    @property
    def observers(self) -> Observers: ...

    @property
    def schedule_specs(self) -> Mapping[str, ScheduleSpec]: ...

    def fire_schedule(
        self, spec: ScheduleSpec, tick: str, tick_ms: int | None, previous: str
    ) -> tuple[str, str]: ...

    @property
    def tally(self) -> Tally: ...

    @property
    def large_result_bytes(self) -> int: ...

    @property
    def max_result_bytes(self) -> int: ...
