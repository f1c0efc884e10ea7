"""One-message canvases (what ``send()`` submits), compiled once per shape: the
definition, the submission's options and its first decisions do not depend on the
message's arguments."""

from __future__ import annotations

import dataclasses
from typing import Any

from streamflow.api.canvas import Message
from streamflow.api.compile import compile_canvas
from streamflow.api.submit import decided, submission_options
from streamflow.model.definition import Definition
from streamflow.model.events import WorkflowSubmitted
from streamflow.model.options import HistoryBudget
from streamflow.model.version import __version__

SHAPES_KEPT = 1024
"""Shapes an App keeps (all are dropped past this many)."""

Shape = tuple[Definition, dict[str, Any], list[Any]]
"""A definition, the submission options and the first decisions."""


class Shapes:
    """The compiled shapes of one App's one-message canvases."""

    def __init__(self) -> None:
        self._kept: dict[tuple[Any, ...], Shape] = {}

    def get(
        self,
        message: Message[Any],
        retention: float | None,
        default_retention_ms: int,
        budget: HistoryBudget | None,
    ) -> Shape:
        """``message``'s shape (its arguments aside), compiled the first time."""
        key = (
            message.actor_name,
            message.options,
            message.pipe_ignore,
            message.delay_ms,
            message.allow_failure,
            message.on_success,
            message.on_failure,
            retention,
            default_retention_ms,
            budget,
        )
        found = self._kept.get(key)
        if found is None:
            bare = dataclasses.replace(message, args=(), kwargs={})
            definition = compile_canvas(bare).definition
            options = submission_options(definition, retention, default_retention_ms, budget)
            empty = WorkflowSubmitted(
                def_hash=definition.hash, args={}, options=options, engine_version=__version__
            )
            found = (definition, options, decided(definition, empty))
            if len(self._kept) >= SHAPES_KEPT:
                self._kept.clear()
            self._kept[key] = found
        return found
