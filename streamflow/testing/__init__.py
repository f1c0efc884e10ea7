"""Test helpers for workflows of your own actors, with no Redis.

- ``run(canvas, actors=..., seed=... or data=...)``: a deterministic in-process
  simulator over the pure core, running your actor functions under deliveries in any
  order, duplicated messages, dropped deliveries and crashes; ``Simulator`` to drive it
  step by step.
- ``assert_audit_clean(history)``, ``assert_released_once(history)``: the contract holds.
- ``evaluate(canvas, actors=...)``: what the result must be, by direct evaluation.
- ``canvases(actors, ...)``, ``messages(actors, ...)``: hypothesis strategies (these need
  ``hypothesis``: install ``streamflow[testing]``; the rest does not).

``import streamflow`` never imports this module.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamflow.testing.actors import actor
from streamflow.testing.assertions import assert_audit_clean, assert_released_once
from streamflow.testing.bodies import SimulatedFailure
from streamflow.testing.driver import NO_FAULTS, Faults, run
from streamflow.testing.records import Job, QueueMessage, SimResult
from streamflow.testing.reference import NOTHING, Evaluation, evaluate
from streamflow.testing.simulator import Simulator, task_ids

if TYPE_CHECKING:
    from streamflow.testing.strategies import canvases, messages

__all__ = [
    "NOTHING",
    "NO_FAULTS",
    "Evaluation",
    "Faults",
    "Job",
    "QueueMessage",
    "SimResult",
    "SimulatedFailure",
    "Simulator",
    "actor",
    "assert_audit_clean",
    "assert_released_once",
    "canvases",
    "evaluate",
    "messages",
    "run",
    "task_ids",
]


def __getattr__(name: str) -> Any:
    # The strategies import hypothesis: only when asked for.
    if name in ("canvases", "messages"):
        from streamflow.testing import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module 'streamflow.testing' has no attribute {name!r}")
