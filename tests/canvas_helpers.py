"""
Shared by the canvas unit tests: a few actors with nothing behind them, and readers of
what a canvas compiles to (its definition, tasks and barriers).
"""

from __future__ import annotations

from typing import Any

from streamflow.api.actors import Actor
from streamflow.api.compile import compile_canvas
from streamflow.model.definition import BarrierNode, Definition, TaskNode
from streamflow.model.options import ActorOptions


def _add(*args: int, **kwargs: Any) -> int:
    return sum(args)


add = Actor(_add, name="add", options=ActorOptions())
a = Actor(_add, name="a", options=ActorOptions())
b = Actor(_add, name="b", options=ActorOptions())
c = Actor(_add, name="c", options=ActorOptions())
d = Actor(_add, name="d", options=ActorOptions(queue="slow", max_retries=3, time_limit_ms=500))


def compile_(canvas: object) -> Definition:
    return compile_canvas(canvas).definition  # type: ignore[arg-type]


def tasks(definition: Definition) -> list[TaskNode]:
    return [n for n in definition.nodes if isinstance(n, TaskNode)]


def barriers(definition: Definition) -> list[BarrierNode]:
    return [n for n in definition.nodes if isinstance(n, BarrierNode)]
