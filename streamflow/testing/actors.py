"""Actors for tests without an App, and finding the functions a canvas names.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

from streamflow.api.actors import Actor
from streamflow.api.canvas import Canvas, Chain, Group, Message, WithCallback, WithDelay
from streamflow.api.options import actor_options, exception_types
from streamflow.model.options import DEFAULT_QUEUE

F = TypeVar("F", bound=Callable[..., Any])

Actors = Iterable[Actor[..., Any]] | Mapping[str, Actor[..., Any]]
"""Actors to run: a list of them, or a name -> actor mapping."""

_DEFINED: dict[str, Actor[..., Any]] = {}
"""Actors made with ``actor``, by name (the latest of a name wins)."""


@overload
def actor(fn: F) -> Actor[Any, Any]: ...


@overload
def actor(
    fn: None = None,
    *,
    actor_name: str | None = None,
    queue: str = DEFAULT_QUEUE,
    max_retries: int = 0,
    min_backoff: float = 1.0,
    max_backoff: float = 60.0,
    throws: type[BaseException] | tuple[type[BaseException], ...] = (),
    retry_when: Callable[[int, BaseException], bool] | None = None,
) -> Callable[[F], Actor[Any, Any]]: ...


def actor(
    fn: F | None = None,
    *,
    actor_name: str | None = None,
    queue: str = DEFAULT_QUEUE,
    max_retries: int = 0,
    min_backoff: float = 1.0,
    max_backoff: float = 60.0,
    throws: type[BaseException] | tuple[type[BaseException], ...] = (),
    retry_when: Callable[[int, BaseException], bool] | None = None,
) -> Actor[Any, Any] | Callable[[F], Actor[Any, Any]]:
    """An actor registered with no App (no Redis), for the simulator: ``@actor`` or
    ``@actor(max_retries=2)``; the options mean what ``App.actor``'s do. The simulator
    finds it by name (the latest actor of a name wins; ``actors=`` overrides)."""
    options = actor_options(
        queue=queue,
        max_retries=max_retries,
        min_backoff=min_backoff,
        max_backoff=max_backoff,
        time_limit=None,
        result_ttl=None,
    )

    def make(func: F) -> Actor[Any, Any]:
        made: Actor[Any, Any] = Actor(
            func,
            name=actor_name or func.__name__,
            options=options,
            throws=exception_types(throws),
            retry_when=retry_when,
        )
        _DEFINED[made.name] = made
        return made

    return make if fn is None else make(fn)


def actor_registry(canvas: Canvas | None, actors: Actors) -> dict[str, Actor[..., Any]]:
    """Actors by name: those given, then those of the Apps the canvas's messages name,
    then those made with ``actor``."""
    found = dict(actors) if isinstance(actors, Mapping) else {a.name: a for a in actors}
    stack: list[Canvas] = [] if canvas is None else [canvas]
    while stack:
        item = stack.pop()
        if isinstance(item, Message):
            if item.app is not None and item.actor_name not in found:
                registered = getattr(item.app, "actors", {}).get(item.actor_name)
                if registered is not None:
                    found[item.actor_name] = registered
            if item.child is not None:  # a Child node's canvas
                stack.append(item.child)
        elif isinstance(item, Chain):
            stack.extend(item.steps)
        elif isinstance(item, Group):
            stack.extend(item.children)
        elif isinstance(item, WithCallback):
            stack.extend([item.child, *item.callbacks])
        elif isinstance(item, WithDelay):
            stack.append(item.child)
    return {**_DEFINED, **found}
