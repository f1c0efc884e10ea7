"""Hypothesis strategies for canvases of your own actors (needs ``hypothesis``: install
``streamflow[testing]``).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st

from streamflow.api.actors import Actor
from streamflow.api.canvas import Canvas, Chain, Group, Message, WithDelay

ArgsStrategy = st.SearchStrategy[Sequence[Any]]
KwargsStrategy = st.SearchStrategy[Mapping[str, Any]]

_NO_ARGS: ArgsStrategy = st.just(())
_NO_KWARGS: KwargsStrategy = st.just({})
_BOOLEANS = st.booleans()
_DELAYS = st.sampled_from([None, None, 0.001, 2.0])
_WITH_DELAYS = st.sampled_from([0.0, 0.001, 1.5])
_TOP_KINDS = st.sampled_from(["chain", "group", "chain", "group", "delay", "message"])
_INNER_KINDS = st.sampled_from(["message", "message", "chain", "group", "delay", "message"])


def _per_actor(
    value: st.SearchStrategy[Any] | Mapping[Any, st.SearchStrategy[Any]],
    actor: Actor[..., Any],
    default: st.SearchStrategy[Any],
) -> st.SearchStrategy[Any]:
    if isinstance(value, Mapping):
        found = value.get(actor, value.get(actor.name))
        return default if found is None else found
    return value


def messages(
    actors: Sequence[Actor[..., Any]],
    *,
    args: ArgsStrategy | Mapping[Any, ArgsStrategy] = _NO_ARGS,
    kwargs: KwargsStrategy | Mapping[Any, KwargsStrategy] = _NO_KWARGS,
    pipe_ignore: st.SearchStrategy[bool] = _BOOLEANS,
    delays: st.SearchStrategy[float | None] = _DELAYS,
) -> st.SearchStrategy[Message[Any]]:
    """Messages of ``actors`` (repeat an actor to draw it more often).

    Args:
        actors: the actors to draw from.
        args: positional arguments: one strategy, or one per actor (keyed by the actor or
            its name; actors left out get none).
        kwargs: keyword arguments, likewise.
        pipe_ignore: whether a message ignores the previous chain step's result.
        delays: the message's own delay in seconds (None: none).
    """
    if not actors:
        raise ValueError("messages needs at least one actor (got none)")

    @st.composite
    def draw_message(draw: st.DrawFn) -> Message[Any]:
        actor: Actor[..., Any] = draw(st.sampled_from(list(actors)))
        message: Message[Any] = actor.message_with_options(
            args=draw(_per_actor(args, actor, _NO_ARGS)),
            kwargs=draw(_per_actor(kwargs, actor, _NO_KWARGS)),
            pipe_ignore=draw(pipe_ignore),
            delay=draw(delays),
        )
        return message

    return draw_message()


def canvases(
    actors: Sequence[Actor[..., Any]] | None = None,
    *,
    messages: st.SearchStrategy[Message[Any]] | None = None,
    args: ArgsStrategy | Mapping[Any, ArgsStrategy] = _NO_ARGS,
    kwargs: KwargsStrategy | Mapping[Any, KwargsStrategy] = _NO_KWARGS,
    max_depth: int = 5,
    max_width: int = 50,
    max_tasks: int = 60,
    max_items: int = 120,
    delays: st.SearchStrategy[float] = _WITH_DELAYS,
) -> st.SearchStrategy[Canvas]:
    """Random canvases of your actors: Chain, Group (empty ones too), WithDelay, messages,
    nested.

    Args:
        actors: the actors whose messages make up the canvas (or give ``messages``).
        messages: a strategy of messages instead (e.g. ``messages(actors, ...)`` with
            options of your own).
        args: positional arguments of each message: a strategy of sequences, or one per
            actor (keyed by the actor or its name).
        kwargs: keyword arguments of each message, likewise.
        max_depth: levels of nesting at most.
        max_width: members of one chain or group at most.
        max_tasks: messages at most, in all.
        max_items: canvas objects at most, in all.
        delays: ``WithDelay`` delays, in seconds.
    """
    if messages is None:
        if actors is None:
            raise ValueError("canvases needs actors or a messages strategy (got neither)")
        messages = _messages(actors, args=args, kwargs=kwargs)
    leaves = messages

    @st.composite
    def draw_canvas(draw: st.DrawFn) -> Canvas:
        tasks = [max_tasks]
        items = [max_items]

        def build(depth: int, in_chain: bool = False) -> Canvas:
            items[0] -= 1
            if depth >= max_depth or items[0] <= 0:
                kind = "message"
            else:
                # Mostly a chain or group at the top (a lone message is a dull workflow).
                kind = draw(_TOP_KINDS if depth == 0 else _INNER_KINDS)
                if kind == "chain" and in_chain:
                    kind = "group"  # a chain in a chain is flattened: wider than max_width
            if kind == "message":
                if tasks[0] <= 0:
                    return Group()
                tasks[0] -= 1
                return draw(leaves)
            if kind == "delay":
                return WithDelay(build(depth + 1), draw(delays))
            low = 1 if kind == "chain" else 0
            high = max(low, min(max_width, items[0]))
            if depth == 0:
                width = draw(st.integers(max(low, 2), max(high, 2)))
            else:
                # Mostly narrow, sometimes wide; empty groups now and then.
                narrow = st.integers(1, max(1, min(high, 4)))
                width = draw(st.one_of(narrow, st.integers(low, high)))
            members = [build(depth + 1, kind == "chain") for _ in range(width)]
            return Chain(*members) if kind == "chain" else Group(*members)

        return build(0)

    return draw_canvas()


_messages = messages
