"""What a worker serves: an App, as the runtime sees it (no import of the API)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from streamflow.runtime.hooks import Hooks
from streamflow.runtime.jobs import Runnable
from streamflow.runtime.projector import Projector
from streamflow.store.connection import Store


class Host(Protocol):
    """What a worker serves (an App): its store and projector, actors and hooks."""

    @property
    def store(self) -> Store: ...

    @property
    def projector(self) -> Projector: ...

    @property
    def actors(self) -> Mapping[str, Runnable]: ...

    @property
    def hooks(self) -> Sequence[Hooks]: ...

    @property
    def large_result_bytes(self) -> int: ...

    @property
    def max_result_bytes(self) -> int: ...
