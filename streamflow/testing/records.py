"""What the simulator keeps and hands out: its queue messages, running jobs and
results, and the definitions it ran (for ``assert_audit_clean``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from streamflow.model.definition import Definition
from streamflow.model.events import Entry, TaskFailed, TaskSucceeded

_DEFINITIONS: dict[str, Definition] = {}
"""Definitions the simulator ran, by hash (``assert_audit_clean`` looks them up)."""
_DEFINITIONS_KEPT = 256


def remember(definition: Definition) -> None:
    """Keep ``definition`` for ``known_definition`` (the newest ``_DEFINITIONS_KEPT``)."""
    if len(_DEFINITIONS) >= _DEFINITIONS_KEPT:
        _DEFINITIONS.pop(next(iter(_DEFINITIONS)))
    _DEFINITIONS[definition.hash] = definition


def known_definition(def_hash: str) -> Definition | None:
    """A definition this process simulated, by its content hash."""
    return _DEFINITIONS.get(def_hash)


@dataclasses.dataclass(frozen=True, slots=True)
class QueueMessage:
    """A task message in a simulated queue (references only, as in Redis)."""

    msg_id: str
    node: int
    attempt: int


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Job:
    """A delivery a worker is running: the outcome it will record (None: a ``Child``
    node's run that parks, acknowledging its message with no outcome)."""

    message: QueueMessage
    outcome: TaskSucceeded | TaskFailed | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SimResult:
    """How a simulated workflow ended."""

    status: str
    """``completed`` or ``failed`` (``running`` if it could not finish)."""
    result: Any
    """The workflow's result (None unless completed); ``Failure`` values stand for tasks
    that failed with ``allow_failure``."""
    error: dict[str, Any] | None
    """``WorkflowFailed.error`` for a failed workflow."""
    history: list[Entry]
    """Every event of the log, as a reader decodes it."""
    definition: Definition
    stats: dict[str, int]
    """What happened: ``run``, ``dup``, ``stale``, ``duplicates``, ``drops``, ``crashes``..."""
