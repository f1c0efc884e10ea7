"""dramatiq's API, with dramatiq's units and defaults, over a streamflow App.

A module written against dramatiq runs on streamflow once its imports change::

    import streamflow.compat.dramatiq as dramatiq                # was: import dramatiq
    from streamflow.compat.dramatiq import RedisBroker           # was: dramatiq.brokers.redis
    from streamflow.compat.dramatiq import Results, RedisBackend  # was: dramatiq.results...

Durations are milliseconds here, as in dramatiq (``delay``, ``time_limit``, ``max_age``,
``min_backoff``, ``max_backoff``, ``result_ttl``, result ``timeout``); the defaults are
dramatiq's: 20 retries backing off from 15 s to 7 days, a 10-minute time limit, a
10-second wait for a result. The broker is a streamflow App (``broker.app``), so every
message sent here is a workflow with a history, and ``pipeline``/``group`` compile to
streamflow's ``Chain``/``Group``. Results need no backend: the ``Results`` middleware and
``RedisBackend`` are accepted and change nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from streamflow.api import canvas as native
from streamflow.api.handles import WorkflowHandle
from streamflow.compat.brokers import (
    ActorNotFound,
    Middleware,
    RedisBackend,
    RedisBroker,
    Results,
    Worker,
    get_broker,
    set_broker,
)
from streamflow.compat.limits import (
    BucketRateLimiter,
    ConcurrentRateLimiter,
    WindowRateLimiter,
)
from streamflow.compat.units import result_wait, seconds_of, seconds_or_none
from streamflow.model.errors import (
    RateLimitExceeded,
    ResultError,
    ResultFailure,
    ResultMissing,
    ResultTimeout,
    StreamflowError,
    TimeLimitExceeded,
)
from streamflow.model.errors import Retry as NativeRetry

__all__ = [
    "Actor",
    "ActorNotFound",
    "BucketRateLimiter",
    "ConcurrentRateLimiter",
    "DramatiqError",
    "Message",
    "Middleware",
    "RateLimitExceeded",
    "RedisBackend",
    "RedisBroker",
    "ResultError",
    "ResultFailure",
    "ResultMissing",
    "ResultTimeout",
    "Results",
    "Retry",
    "SentMessage",
    "TimeLimitExceeded",
    "WindowRateLimiter",
    "Worker",
    "actor",
    "get_broker",
    "group",
    "pipeline",
    "set_broker",
]

MAX_RETRIES = 20
MIN_BACKOFF_MS = 15_000
MAX_BACKOFF_MS = 7 * 24 * 3600 * 1000
TIME_LIMIT_MS = 10 * 60 * 1000

DramatiqError = StreamflowError
"""The base of every error raised here."""


class Message(native.Message[Any]):
    """A message, as streamflow's, whose ``|`` makes this module's ``pipeline``."""

    __slots__ = ()

    def __or__(self, other: native.Canvas) -> pipeline:
        return pipeline([self, other])

    @classmethod
    def of(cls, message: native.Message[Any]) -> Message:
        return cls(**{f.name: getattr(message, f.name) for f in dataclasses.fields(message)})


class SentMessage:
    """What ``send`` returns: the message's workflow, asked as dramatiq's message is."""

    def __init__(self, handle: WorkflowHandle[Any], message: native.Message[Any]) -> None:
        self.handle = handle
        self.message_id = handle.id
        self.actor_name = message.actor_name
        self.queue_name = message.options.queue
        self.args = message.args
        self.kwargs = dict(message.kwargs)

    def get_result(
        self, *, backend: RedisBackend | None = None, block: bool = False, timeout: Any = None
    ) -> Any:
        """Its result (``timeout`` in ms, default 10 s).

        Raises:
            ResultMissing: not finished (without ``block``).
            ResultTimeout: not finished within ``timeout``.
            ResultFailure: it failed.
        """
        return self.handle.get_result(block=block, timeout=result_wait(timeout))

    def __repr__(self) -> str:
        return f"SentMessage({self.actor_name}, id={self.message_id})"


_MESSAGE_OPTIONS = frozenset(
    {"delay", "pipe_ignore", "on_success", "on_failure", "on_retry_exhausted"}
    | {"max_retries", "min_backoff", "max_backoff", "time_limit", "max_age"}
)
_ACTOR_OPTIONS = frozenset(
    {"max_retries", "min_backoff", "max_backoff", "time_limit", "throws", "retry_when"}
    | {"store_results", "result_ttl", "on_success", "on_failure", "max_age", "priority"}
    | {"on_retry_exhausted"}
)


def _unknown(options: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"{where}: unknown option {', '.join(unknown)}; known: {sorted(known)}")


def _callback(value: Any) -> Any:
    return value.native if isinstance(value, Actor) else value


class Actor:
    """An actor declared with ``actor``: dramatiq's methods, in dramatiq's units."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        broker: RedisBroker,
        actor_name: str | None,
        queue_name: str,
        options: dict[str, Any],
    ) -> None:
        where = f"actor {actor_name or fn.__name__!r}"
        _unknown(options, _ACTOR_OPTIONS, where)
        self.broker = broker
        self.fn = fn
        self.options = options
        declare = broker.app.actor(
            actor_name=actor_name,
            queue=queue_name,
            max_retries=options.get("max_retries", MAX_RETRIES),
            min_backoff=seconds_of(options.get("min_backoff", MIN_BACKOFF_MS), "min_backoff"),
            max_backoff=seconds_of(options.get("max_backoff", MAX_BACKOFF_MS), "max_backoff"),
            time_limit=seconds_or_none(options.get("time_limit", TIME_LIMIT_MS), "time_limit"),
            max_age=seconds_or_none(options.get("max_age"), "max_age"),
            priority=options.get("priority", 0),
            result_ttl=seconds_or_none(options.get("result_ttl"), "result_ttl"),
            throws=options.get("throws", ()),
            retry_when=options.get("retry_when"),
        )
        self.native = declare(fn)
        self.actor_name = self.native.name
        self.queue_name = queue_name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Actor({self.actor_name}, queue={self.queue_name})"

    def message(self, *args: Any, **kwargs: Any) -> Message:
        return self.message_with_options(args=args, kwargs=kwargs)

    def message_with_options(
        self, *, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Message:
        """A message with dramatiq's per-message options (``delay``, ``time_limit``,
        ``min_backoff``, ``max_backoff`` and ``max_age`` in ms; ``pipe_ignore``,
        ``max_retries``, ``on_success``, ``on_failure``, ``on_retry_exhausted``).

        Raises:
            ValueError: an option this does not know.
        """
        _unknown(options, _MESSAGE_OPTIONS, f"a message of {self.actor_name!r}")
        on_success = options.get("on_success", self.options.get("on_success"))
        on_failure = options.get("on_failure", self.options.get("on_failure"))
        exhausted = options.get("on_retry_exhausted", self.options.get("on_retry_exhausted"))
        return Message.of(
            self.native.message_with_options(
                args=args,
                kwargs=kwargs,
                pipe_ignore=options.get("pipe_ignore", False),
                delay=seconds_or_none(options.get("delay"), "delay"),
                on_success=_callback(on_success),
                on_failure=_callback(on_failure),
                on_retry_exhausted=_callback(exhausted),
                max_retries=options.get("max_retries"),
                min_backoff=seconds_or_none(options.get("min_backoff"), "min_backoff"),
                max_backoff=seconds_or_none(options.get("max_backoff"), "max_backoff"),
                time_limit=seconds_or_none(options.get("time_limit"), "time_limit"),
                max_age=seconds_or_none(options.get("max_age"), "max_age"),
            )
        )

    def send(self, *args: Any, **kwargs: Any) -> SentMessage:
        return self.send_with_options(args=args, kwargs=kwargs)

    def send_with_options(
        self, *, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> SentMessage:
        """Run it once (a one-task workflow); ``delay`` in ms."""
        message = self.message_with_options(args=args, kwargs=kwargs, pipe_ignore=True, **options)
        return SentMessage(self.broker.app.submit(message), message)


def actor(
    fn: Callable[..., Any] | None = None,
    *,
    actor_name: str | None = None,
    queue_name: str = "default",
    priority: int = 0,
    broker: RedisBroker | None = None,
    **options: Any,
) -> Any:
    """Declare an actor on ``broker`` (default: ``get_broker()``), bare or with dramatiq's
    options (durations in ms; defaults as dramatiq's).

    Raises:
        ValueError: an option this does not know.
    """

    def declare(fn: Callable[..., Any]) -> Actor:
        on = broker if broker is not None else get_broker()
        options["priority"] = priority
        return Actor(fn, broker=on, actor_name=actor_name, queue_name=queue_name, options=options)

    return declare(fn) if fn is not None else declare


class _OnBroker:
    """What this module's pipeline and group share: the broker they run on (default:
    their messages' App), and ``|`` making this module's pipeline."""

    _broker: RedisBroker | None = None

    def __or__(self, other: native.Canvas) -> pipeline:
        return pipeline([cast(native.Canvas, self), other], broker=self._broker)

    def _app(self, app: Any) -> Any:
        return app if app is not None or self._broker is None else self._broker.app


class pipeline(_OnBroker, native.pipeline):
    """dramatiq's pipeline: ``run(delay=ms)``, result ``timeout`` in ms."""

    def __init__(self, children: Iterable[native.Canvas], *, broker: RedisBroker | None = None):
        super().__init__(children)
        self._broker = broker

    def run(self, *, delay: Any = None, app: Any = None) -> pipeline:
        super().run(delay=seconds_or_none(delay, "delay"), app=self._app(app))
        return self

    def get_result(
        self, *, block: bool = False, timeout: Any = None, raise_on_error: bool = True
    ) -> Any:
        wait = result_wait(timeout)
        return super().get_result(block=block, timeout=wait, raise_on_error=raise_on_error)

    def get_results(self, *, block: bool = False, timeout: Any = None) -> list[Any]:
        return super().get_results(block=block, timeout=result_wait(timeout))


class group(_OnBroker, native.group):
    """dramatiq's group: ``run(delay=ms)``, ``wait`` and result ``timeout`` in ms."""

    def __init__(self, children: Iterable[native.Canvas], *, broker: RedisBroker | None = None):
        super().__init__(children)
        self._broker = broker

    def run(self, *, delay: Any = None, app: Any = None) -> group:
        super().run(delay=seconds_or_none(delay, "delay"), app=self._app(app))
        return self

    def get_results(
        self, *, block: bool = False, timeout: Any = None, raise_on_error: bool = True
    ) -> Any:
        wait = result_wait(timeout)
        return super().get_results(block=block, timeout=wait, raise_on_error=raise_on_error)

    def wait(self, *, timeout: Any = None) -> None:
        super().wait(timeout=result_wait(timeout))


class Retry(NativeRetry):
    """Raised by an actor: run it again, ``delay`` ms from now (default: its backoff)."""

    def __init__(self, message: str = "", delay: Any = None) -> None:
        super().__init__(message, delay=seconds_or_none(delay, "delay"))
