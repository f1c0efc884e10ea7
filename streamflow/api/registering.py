"""Registering actors: ``App.actor``, typed so that an actor keeps its function's
parameters and result type (``Actor[P, R]``; an async function's result is what it
returns once awaited)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, Protocol, TypeVar, cast, overload

from streamflow.api.actors import Actor, Registry, registrar
from streamflow.api.options import actor_options
from streamflow.model.options import DEFAULT_QUEUE

P = ParamSpec("P")
R = TypeVar("R")


class Decorator(Protocol):
    """What ``app.actor(...)`` with options returns: it registers a function."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Actor[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Actor[P, R]: ...


class Registering:
    """The App's actor registry."""

    actors: dict[str, Actor[Any, Any]]

    @overload
    def actor(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> Actor[P, R]: ...

    @overload
    def actor(self, fn: Callable[P, R]) -> Actor[P, R]: ...

    @overload
    def actor(
        self,
        fn: None = None,
        *,
        actor_name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        max_retries: int = 0,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        time_limit: float | None = None,
        result_ttl: float | None = None,
        max_age: float | None = None,
        priority: int = 0,
        throws: type[BaseException] | tuple[type[BaseException], ...] = (),
        retry_when: Callable[[int, BaseException], bool] | None = None,
    ) -> Decorator: ...

    def actor(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        actor_name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        max_retries: int = 0,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        time_limit: float | None = None,
        result_ttl: float | None = None,
        max_age: float | None = None,
        priority: int = 0,
        throws: type[BaseException] | tuple[type[BaseException], ...] = (),
        retry_when: Callable[[int, BaseException], bool] | None = None,
    ) -> Actor[Any, Any] | Decorator:
        """Register a function (plain or ``async``) as an actor.

        Usable bare (``@app.actor``) or with options (``@app.actor(queue="io")``).

        Args:
            actor_name: name in definitions and messages (default: the function's name).
            queue: queue its messages go to.
            max_retries: retries after a failed attempt before the node fails for good.
            min_backoff: seconds before the first retry (doubles per retry, with jitter).
            max_backoff: upper bound of the retry delay, in seconds.
            time_limit: longest an attempt may run, in seconds: a sync body gets
                TimeLimitExceeded raised in its thread, an async one is cancelled; then
                the retry policy applies (None: no limit).
            throws: an exception class, or a tuple of them, that fail the task at once,
                without retries.
            retry_when: ``retry_when(retries_so_far, exception) -> bool`` decides whether
                to retry instead of ``max_retries``.
            result_ttl: seconds a finished workflow running this actor is kept at least
                (the longest of its actors' wins over the App's retention).
            max_age: seconds a message may wait in its queue (from when it was due: a
                delay or a backoff is not counted) before a worker takes it; an older
                one is not run, and its task fails with ``AgeLimitExceeded``, without
                retries (None: no limit).
            priority: among the messages a worker fetched, lower numbers start first;
                a level is worth a second of waiting, so none starves (dramatiq's order:
                0 by default, lower is more urgent).
        """
        options = actor_options(
            queue=queue,
            max_retries=max_retries,
            min_backoff=min_backoff,
            max_backoff=max_backoff,
            time_limit=time_limit,
            result_ttl=result_ttl,
            max_age=max_age,
            priority=priority,
        )
        register = registrar(
            cast(Registry, self), self.actors, options, actor_name, throws, retry_when
        )
        return register(fn) if fn is not None else cast(Decorator, register)
