"""dramatiq's broker, middleware and worker, over a streamflow App."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streamflow.api.actors import Actor as NativeActor
from streamflow.api.app import App
from streamflow.compat.units import seconds_of
from streamflow.model.errors import StreamflowError
from streamflow.runtime.worker import Worker as NativeWorker


class ActorNotFound(StreamflowError, LookupError):
    """``broker.get_actor`` was asked for a name no actor has."""


class Middleware:
    """A middleware streamflow needs no code for (what it does is built in)."""


class RedisBackend:
    """dramatiq's Redis backend for results and rate limits: here both live on the
    broker's Redis, so it only stands in (its arguments are not used)."""

    def __init__(self, **_options: Any) -> None:
        pass


class Results(Middleware):
    """dramatiq's results middleware: results are always in a workflow's log."""

    def __init__(self, *, backend: RedisBackend | None = None, **_options: Any) -> None:
        self.backend = backend


class RedisBroker:
    """A streamflow App on a Redis, in a dramatiq broker's place.

    Args:
        url: the Redis URL (or ``host``, ``port``, ``db``, ``password``); with none, the
            App's default: ``STREAMFLOW_REDIS_URL``, else a private embedded Redis.
        namespace: the key prefix (the App's ``prefix``).
        middleware: middleware to add (see ``add_middleware``).
        app: an App to use as it is, in place of the above.
        options: more keyword arguments of ``App``.
    """

    def __init__(
        self,
        *,
        url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        db: int | None = None,
        password: str | None = None,
        namespace: str | None = None,
        middleware: Iterable[Middleware] = (),
        app: App | None = None,
        **options: Any,
    ) -> None:
        if app is None:
            if url is None and (host, port, db, password) != (None, None, None, None):
                auth = f":{password}@" if password else ""
                url = f"redis://{auth}{host or '127.0.0.1'}:{port or 6379}/{db or 0}"
            if namespace is not None:
                options["prefix"] = namespace
            app = App(url, **options)
        self.app = app
        self.middleware: list[Middleware] = []
        for each in middleware:
            self.add_middleware(each)

    def add_middleware(self, middleware: Middleware, **_where: Any) -> None:
        """Accept one of the middleware above (built in here, nothing to add).

        Raises:
            TypeError: any other middleware (streamflow's extension points are ``Hooks``).
        """
        if not isinstance(middleware, Middleware):
            raise TypeError(
                f"{middleware!r} is not a middleware streamflow knows: what dramatiq's "
                "own middleware do is built in, and your own belong in streamflow.Hooks"
            )
        self.middleware.append(middleware)

    def get_actor(self, actor_name: str) -> NativeActor[Any, Any]:
        """The actor of that name.

        Raises:
            ActorNotFound: none has it.
        """
        found = self.app.actors.get(actor_name)
        if found is None:
            raise ActorNotFound(f"no actor named {actor_name!r} is registered")
        return found

    def get_declared_actors(self) -> set[str]:
        return set(self.app.actors)

    def get_declared_queues(self) -> set[str]:
        return {each.options.queue for each in self.app.actors.values()}

    def close(self) -> None:
        self.app.close()


_broker: RedisBroker | None = None


def set_broker(broker: RedisBroker) -> None:
    """Make ``broker`` the one actors are declared on."""
    global _broker
    _broker = broker


def get_broker() -> RedisBroker:
    """The broker set, else a ``RedisBroker()`` made and set now."""
    if _broker is None:
        set_broker(RedisBroker())
    assert _broker is not None
    return _broker


class Worker:
    """dramatiq's in-process worker: ``worker_threads`` tasks at once."""

    def __init__(
        self,
        broker: RedisBroker,
        *,
        queues: Iterable[str] | None = None,
        worker_timeout: int = 1000,
        worker_threads: int = 8,
    ) -> None:
        options: dict[str, Any] = {"concurrency": worker_threads}
        if queues is not None:
            options["queues"] = list(queues)
        self.native: NativeWorker = broker.app.worker(**options)

    def start(self) -> None:
        self.native.start()

    def stop(self, timeout: int = 600_000) -> None:
        """Stop fetching; let in-flight tasks finish for up to ``timeout`` ms."""
        seconds = seconds_of(timeout, "timeout")
        assert seconds is not None
        self.native.stop(timeout=seconds)
