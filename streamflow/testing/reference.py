"""The reference model of a canvas: a direct recursive evaluation in Python.

What a workflow's result must be when nothing fails, evaluated the way the canvas's
semantics say (DESIGN §4), without the engine: compare a simulated (or real) run to it.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from streamflow.api.actors import Actor
from streamflow.api.canvas import Canvas, Group, Message, WithCallback, WithDelay, has_tasks
from streamflow.model import codec
from streamflow.testing.actors import Actors, actor_registry

NOTHING: Any = object()
"""Nothing piped (the first step of the workflow, or ``pipe_ignore``)."""


@dataclasses.dataclass(slots=True)
class Evaluation:
    """What direct evaluation says, per message in canvas order and for the whole canvas."""

    value: Any
    """The workflow's result."""
    messages: list[Message[Any]]
    inputs: list[Any]
    """Piped input of each message (``NOTHING`` if none)."""
    values: list[Any]
    """Result of each message, as the log holds it (through the codec)."""
    delays_ms: list[int]
    """Delay of each message's first attempt once it is ready."""


def evaluate(
    canvas: Canvas,
    *,
    actors: Actors = (),
) -> Evaluation:
    """Evaluate ``canvas`` directly by calling its actors' functions in canvas order.

    Args:
        canvas: Chain, Group, WithDelay and messages (no callbacks).
        actors: the actor functions (those of an ``App`` are found through the messages).

    Raises:
        TypeError: the canvas holds a ``WithCallback``.
    """
    registry = actor_registry(canvas, actors)
    out = Evaluation(value=None, messages=[], inputs=[], values=[], delays_ms=[])
    out.value = _evaluate(canvas, NOTHING, 0, out, registry)
    return out


def _evaluate(
    canvas: Canvas, piped: Any, delay_ms: int, out: Evaluation, actors: dict[str, Actor[..., Any]]
) -> Any:
    if isinstance(canvas, Message) and canvas.child is not None:
        # A Child node: its canvas's value, as a workflow of its own (nothing piped in).
        value = evaluate(canvas.child, actors=actors).value
        out.messages.append(canvas)
        out.inputs.append(NOTHING)
        out.values.append(value)
        out.delays_ms.append(delay_ms + canvas.delay_ms)
        return value
    if isinstance(canvas, Message):
        args = list(canvas.args)
        if piped is not NOTHING and not canvas.pipe_ignore:
            args.append(piped)
        actor = actors[canvas.actor_name]
        value = actor.fn(*args, **canvas.kwargs)
        if actor.is_async:
            value = asyncio.run(value)
        value = codec.decode(codec.encode(value))
        out.messages.append(canvas)
        out.inputs.append(NOTHING if canvas.pipe_ignore else piped)
        out.values.append(value)
        out.delays_ms.append(delay_ms + canvas.delay_ms)
        return value
    if isinstance(canvas, WithDelay):
        return _evaluate(canvas.child, piped, delay_ms + canvas.delay_ms, out, actors)
    if isinstance(canvas, Group):
        return [_evaluate(child, piped, delay_ms, out, actors) for child in canvas.children]
    if isinstance(canvas, WithCallback):
        raise TypeError("evaluate does not model completion callbacks (WithCallback)")
    value = piped
    for step in canvas.steps:
        value = _evaluate(step, value, delay_ms, out, actors)
        if has_tasks(step):
            delay_ms = 0  # a chain's delay holds back its first step with tasks only
    return None if value is NOTHING else value  # an empty chain: its input, or None
