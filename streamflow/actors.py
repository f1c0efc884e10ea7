"""Actors (the functions a worker runs) and messages (one call of an actor)."""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

if TYPE_CHECKING:
    from streamflow.canvas import Canvas, Chain
    from streamflow.handles import WorkflowHandle

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_QUEUE = "default"


def to_ms(value: float | datetime.timedelta | None, name: str) -> int:
    """Seconds (or a timedelta) as whole milliseconds, validated."""
    if value is None:
        return 0
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a non-negative number of seconds (got {value!r})")
    return round(value * 1000)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ActorOptions:
    """What the definition records about an actor (everything ``decide`` needs)."""

    queue: str = DEFAULT_QUEUE
    """Queue its messages go to."""
    max_retries: int = 0
    """Retries after a failed attempt before the node fails for good."""
    min_backoff_ms: int = 1000
    """Delay before the first retry; doubles per retry, with jitter."""
    max_backoff_ms: int = 60_000
    """Upper bound of the retry delay."""
    time_limit_ms: int | None = None
    """Longest a single attempt may run (None: no limit)."""
    result_ttl_ms: int | None = None
    """Keep a finished workflow running this actor at least this long."""


@dataclasses.dataclass(frozen=True, slots=True)
class Callback:
    """An actor named as a callback: what the definition needs of it."""

    actor_name: str
    options: ActorOptions

    @classmethod
    def of(cls, actor: Actor[Any, Any] | None, what: str) -> Callback | None:
        if actor is None:
            return None
        if not isinstance(actor, Actor):
            raise TypeError(
                f"{what} must be an actor (got {actor!r} of type {type(actor).__name__})"
            )
        return cls(actor.name, actor.options)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One call of an actor, ready to be placed in a canvas. Build with ``actor.message``."""

    actor_name: str
    options: ActorOptions
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    pipe_ignore: bool = False
    """Do not append the previous chain step's result to the arguments."""
    delay_ms: int = 0
    """Wait this long after the message becomes ready before running it."""
    allow_failure: bool = False
    """A final failure yields a ``Failure`` value in the results; the workflow goes on."""
    on_success: Callback | None = None
    """Actor run after this message succeeded, with ``(message_data, result)``."""
    on_failure: Callback | None = None
    """Actor run after this message failed for good, with ``(message_data, failure)``."""
    app: Any = dataclasses.field(default=None, compare=False, repr=False)
    """The App its actor is registered with (used by ``send``, ``pipeline.run``)."""

    def __or__(self, other: Canvas) -> Chain:
        from streamflow.compose import pipeline

        return pipeline([self, other])


class Actor(Generic[P, R]):
    """A registered function. Calling it runs the function directly, in process."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str,
        options: ActorOptions,
        app: Any = None,
        throws: tuple[type[BaseException], ...] = (),
        retry_when: Callable[[int, BaseException], bool] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.options = options
        self.app = app
        self.throws = throws
        """Exceptions that fail the task at once, without retries."""
        self.retry_when = retry_when
        """``retry_when(retries_so_far, exception) -> bool`` decides retries instead of
        ``max_retries`` (the worker records its answer in the log)."""
        self.is_async = inspect.iscoroutinefunction(fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Actor({self.name!r}, queue={self.options.queue!r})"

    def message(self, *args: Any, **kwargs: Any) -> Message:
        """A message calling this actor with these arguments."""
        return Message(
            actor_name=self.name, options=self.options, args=args, kwargs=kwargs, app=self.app
        )

    def message_with_options(
        self,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        pipe_ignore: bool = False,
        delay: float | datetime.timedelta | None = None,
        allow_failure: bool = False,
        on_success: Actor[Any, Any] | None = None,
        on_failure: Actor[Any, Any] | None = None,
    ) -> Message:
        """A message with per-message options.

        Args:
            args: positional arguments.
            kwargs: keyword arguments.
            pipe_ignore: do not receive the previous chain step's result.
            delay: seconds (or a timedelta) to wait once the message is ready.
            allow_failure: if it fails for good, its result is a ``Failure`` value and
                the workflow goes on.
            on_success: actor run after it succeeded, with ``(message_data, result)``.
            on_failure: actor run after it failed for good, with
                ``(message_data, failure_data)``.
        """
        return Message(
            actor_name=self.name,
            options=self.options,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            pipe_ignore=pipe_ignore,
            delay_ms=to_ms(delay, "delay"),
            allow_failure=allow_failure,
            on_success=Callback.of(on_success, "on_success"),
            on_failure=Callback.of(on_failure, "on_failure"),
            app=self.app,
        )

    def send(self, *args: Any, **kwargs: Any) -> WorkflowHandle:
        """Run this actor once, as a one-task workflow; returns its handle."""
        return self.send_with_options(args=args, kwargs=kwargs)

    def send_with_options(
        self,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        delay: float | datetime.timedelta | None = None,
    ) -> WorkflowHandle:
        """``send`` with options (``delay`` in seconds or a timedelta)."""
        if self.app is None:
            raise RuntimeError(f"actor {self.name!r} is not registered with an App")
        handle: WorkflowHandle = self.app.submit(
            self.message_with_options(args=args, kwargs=kwargs, delay=delay)
        )
        return handle
