"""Actors: the functions a worker runs, and the messages that call them."""

from __future__ import annotations

import dataclasses
import datetime
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from streamflow.api.aio import AsyncWorkflowHandle
from streamflow.api.canvas import Callback, Canvas, Message
from streamflow.api.handles import WorkflowHandle
from streamflow.api.options import exception_types, overridden, until
from streamflow.model.options import ActorOptions, to_ms

P = ParamSpec("P")
R = TypeVar("R")


class Registry(Protocol):
    """What an actor is registered with (an App): ``send`` submits through it."""

    def submit(self, canvas: Canvas) -> WorkflowHandle[Any]: ...

    async def submit_async(self, canvas: Canvas) -> AsyncWorkflowHandle[Any]: ...


def callback_of(
    actor: Actor[Any, Any] | str | None,
    what: str,
    registered: Mapping[str, Actor[Any, Any]] | None = None,
) -> Callback | None:
    """The callback an actor (or an actor's name, among ``registered``) stands for, as a
    definition records it.

    Raises:
        TypeError: ``actor`` is neither an Actor nor a name.
        ValueError: no actor of that name is registered.
    """
    if actor is None:
        return None
    if isinstance(actor, str):
        found = (registered or {}).get(actor)
        if found is None:
            known = ", ".join(sorted(registered or {})) or "none"
            raise ValueError(
                f"{what} names actor {actor!r}, which is not registered with this App "
                f"(registered: {known})"
            )
        actor = found
    if not isinstance(actor, Actor):
        raise TypeError(
            f"{what} must be an actor or an actor's name (got {actor!r} of type "
            f"{type(actor).__name__})"
        )
    return Callback(actor.name, actor.options)


def registrar(
    app: Registry,
    actors: dict[str, Actor[Any, Any]],
    options: ActorOptions,
    actor_name: str | None,
    throws: type[BaseException] | tuple[type[BaseException], ...],
    retry_when: Callable[[int, BaseException], bool] | None,
) -> Callable[[Callable[..., Any]], Actor[Any, Any]]:
    """What registers a function as an actor of ``app`` (in ``actors``, by name).

    Raises:
        TypeError: ``throws`` is not an exception class or a tuple of them.
    """
    throws = exception_types(throws)

    def register(func: Callable[..., Any]) -> Actor[Any, Any]:
        name = actor_name or func.__name__
        if name.startswith("@"):
            raise ValueError(f"actor names beginning with '@' are streamflow's own (got {name!r})")
        if name in actors and actors[name].fn is not func:
            raise ValueError(f"an actor named {name!r} is already registered")
        registered: Actor[Any, Any] = Actor(
            func, name=name, options=options, app=app, throws=throws, retry_when=retry_when
        )
        actors[name] = registered
        return registered

    return register


class Actor(Generic[P, R]):
    """A registered function. Calling it runs the function directly, in process.

    Typed ``Actor[P, R]``: ``P`` its function's parameters, ``R`` its result (what an
    async function returns once awaited). ``message`` and ``send`` take exactly those
    parameters (mypy checks them); a chain step that receives the previous step's result
    as its last argument is written ``piped``, which takes the leading ones.
    """

    def __init__(
        self,
        fn: Callable[P, Any],
        *,
        name: str,
        options: ActorOptions,
        app: Registry | None = None,
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
        try:
            self._signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # some builtins and callables have none
            self._signature = None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Run the function here and now (an async one returns its coroutine)."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Actor({self.name!r}, queue={self.options.queue!r})"

    def _check_arguments(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], *, complete: bool = False
    ) -> None:
        """Check the arguments against the function's signature, as far as it can be
        before the piped inputs are known (unless ``complete``: nothing is piped).

        Raises:
            TypeError: naming the actor and its signature.
        """
        if self._signature is None:
            return
        try:
            if complete:
                self._signature.bind(*args, **kwargs)
            else:
                self._signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            empty = inspect.Parameter.empty
            bare = [p.replace(annotation=empty) for p in self._signature.parameters.values()]
            shown = self._signature.replace(parameters=bare, return_annotation=empty)
            raise TypeError(f"actor {self.name!r} takes {shown}: {exc}") from None

    def message(self, *args: P.args, **kwargs: P.kwargs) -> Message[R]:
        """A message calling this actor with these arguments (checked against its
        signature; in a chain, the previous step's result is appended: the same as
        ``piped``, which type checkers accept for leading arguments only).

        Raises:
            TypeError: they cannot be its arguments.
        """
        return self.piped(*args, **kwargs)

    def piped(self, *args: Any, **kwargs: Any) -> Message[R]:
        """A message calling this actor with these leading arguments, the previous chain
        step's result coming last (checked against its signature as far as it can be).

        Raises:
            TypeError: they cannot be its leading arguments.
        """
        self._check_arguments(args, kwargs)
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
        on_success: Actor[Any, Any] | str | None = None,
        on_failure: Actor[Any, Any] | str | None = None,
        on_retry_exhausted: Actor[Any, Any] | str | None = None,
        max_retries: int | None = None,
        min_backoff: float | datetime.timedelta | None = None,
        max_backoff: float | datetime.timedelta | None = None,
        time_limit: float | datetime.timedelta | None = None,
        max_age: float | datetime.timedelta | None = None,
        priority: int | None = None,
        eta: datetime.datetime | None = None,
    ) -> Message[R]:
        """A message with per-message options.

        Args:
            args: positional arguments.
            kwargs: keyword arguments.
            pipe_ignore: do not receive the previous chain step's result.
            delay: seconds (or a timedelta) to wait once the message is ready.
            allow_failure: if it fails for good, its result is a ``Failure`` value and
                the workflow goes on.
            on_success: actor (or an actor's name, registered with the App) run after it
                succeeded, with ``(message_data, result)``.
            on_failure: actor (or name) run after it failed for good, with
                ``(message_data, failure_data)``.
            on_retry_exhausted: actor (or name) run after it failed for good because
                its retries were used up (or ``retry_when`` declined one; not for
                ``throws``), with ``(message_data, retry_info)``: the failure data with
                ``retries`` and ``max_retries``.
            max_retries: this message's retry count, in place of the actor's (None: the
                actor's; so for the five below); recorded in the workflow's definition
                like the actor's.
            min_backoff: this message's shortest backoff before a retry.
            max_backoff: this message's longest backoff before a retry.
            time_limit: this message's time limit for one attempt.
            max_age: this message's longest wait in its queue before it is not run.
            priority: this message's priority among a worker's fetched messages.
            eta: a timezone-aware time to run at, in place of ``delay`` (the delay until
                then by this process's clock, now).

        Raises:
            TypeError: ``args`` and ``kwargs`` cannot be its arguments.
            ValueError: a retry count below 0, a duration that is not one, or an
                ``eta`` that is naive or given with ``delay``.
        """
        self._check_arguments(args, kwargs or {}, complete=pipe_ignore)
        message = self._message(
            args, kwargs, pipe_ignore, until(delay, eta), allow_failure, on_success, on_failure
        )
        if on_retry_exhausted is not None:
            exhausted = callback_of(on_retry_exhausted, "on_retry_exhausted", self._registered())
            message = dataclasses.replace(message, on_retry_exhausted=exhausted)
        overrides = overridden(max_retries, min_backoff, max_backoff, time_limit, max_age, priority)
        if overrides:
            message = dataclasses.replace(
                message, options=dataclasses.replace(message.options, **overrides)
            )
        return message

    def _message(
        self,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None,
        pipe_ignore: bool = False,
        delay: float | datetime.timedelta | None = None,
        allow_failure: bool = False,
        on_success: Actor[Any, Any] | str | None = None,
        on_failure: Actor[Any, Any] | str | None = None,
    ) -> Message[R]:
        """A message with these options, its arguments already checked."""
        return Message(
            actor_name=self.name,
            options=self.options,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            pipe_ignore=pipe_ignore,
            delay_ms=to_ms(delay, "delay", short=True),
            allow_failure=allow_failure,
            on_success=callback_of(on_success, "on_success", self._registered()),
            on_failure=callback_of(on_failure, "on_failure", self._registered()),
            app=self.app,
        )

    def _registered(self) -> Mapping[str, Actor[Any, Any]]:
        """The actors of this actor's App, by name (none without an App)."""
        return getattr(self.app, "actors", None) or {}

    def send(self, *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]:
        """Run this actor once, as a one-task workflow; returns its handle."""
        return self.send_with_options(args=args, kwargs=kwargs)

    def send_with_options(
        self,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        delay: float | datetime.timedelta | None = None,
        eta: datetime.datetime | None = None,
    ) -> WorkflowHandle[R]:
        """``send`` with options (``delay`` in seconds or a timedelta, or an ``eta``: a
        timezone-aware time to run at)."""
        return self._app().submit(self._sent(args, kwargs, until(delay, eta)))

    async def send_async(self, *args: P.args, **kwargs: P.kwargs) -> AsyncWorkflowHandle[R]:
        """``send`` for asyncio code (see ``App.submit_async``)."""
        return await self._app().submit_async(self._sent(args, kwargs, None))

    async def send_with_options_async(
        self,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        delay: float | datetime.timedelta | None = None,
        eta: datetime.datetime | None = None,
    ) -> AsyncWorkflowHandle[R]:
        """``send_with_options`` for asyncio code."""
        return await self._app().submit_async(self._sent(args, kwargs, until(delay, eta)))

    def _app(self) -> Registry:
        if self.app is None:
            raise RuntimeError(f"actor {self.name!r} is not registered with an App")
        return self.app

    def _sent(
        self,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None,
        delay: float | datetime.timedelta | None,
    ) -> Message[R]:
        self._check_arguments(args, kwargs or {}, complete=True)  # nothing is piped
        return self._message(args, kwargs, delay=delay)
