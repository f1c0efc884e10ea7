"""The store's asyncio face: plans (``streamflow.store.plan``) carried out on an event
loop, and one subscription per loop telling waiters that workflows ended. Only I/O is
here; what to send and what the replies mean is the plans', shared with the threads'
face."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import redis
import redis.asyncio as aredis
from hiredis import pack_command

from streamflow.logs import get_logger
from streamflow.store.aio_cluster import AsyncRoutes
from streamflow.store.connection import Outage, Store
from streamflow.store.endings import LISTEN_S, dispatch
from streamflow.store.plan import Command, Plan, run_async
from streamflow.store.scripts import Call

log = get_logger(__name__)
T = TypeVar("T")

POOL_SIZE = 32
"""Connections an event loop's face opens at most (its subscription's among them)."""
RUNNING = 16
"""Plans an event loop's face carries out at once. A thousand coroutines woken together
(a thousand results awaited at once) each take one cheap step, to wait their turn,
rather than each a read and a decoding: the loop is never held for long."""


class AsyncStore:
    """A ``Store``'s face on one event loop: its own connection pool, made from the same
    URL; the keys, scripts and definitions are the ``Store``'s.

    Args:
        store: the threads' store, whose URL, keys, scripts and definition cache it uses.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._routes = AsyncRoutes(store.client, POOL_SIZE) if store.cluster else None
        """On a cluster: a pool per master (the subscription on any one: an end is told
        on every node)."""
        # Bounded: a thousand coroutines reading at once queue for a few connections
        # rather than opening one each.
        if self._routes is not None:
            pool = self._routes.pool()
        else:
            pool = aredis.BlockingConnectionPool.from_url(
                store.url, max_connections=POOL_SIZE, timeout=None
            )
        self.client = aredis.Redis(connection_pool=pool)
        self._running = asyncio.Semaphore(RUNNING)
        subscriber = self._routes.any_master if self._routes is not None else None
        self.endings = AsyncEndings(self.client, store.keys.done_pattern(), subscriber)

    async def run(self, plan: Plan[T]) -> T:
        """Carry out ``plan`` on this loop: at most ``RUNNING`` plans at a time, the
        others wait their turn at little cost to the loop."""
        async with self._running:
            return await run_async(plan, self.execute)

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """A plan's executor on this loop: script calls (``Call``) as the scripts' plan
        sends them, other commands in one round trip."""
        routes = self._routes
        if commands and isinstance(commands[0], Call):
            calls = cast(Sequence[Call], commands)
            if routes is None:
                return await run_async(self.store.scripts.plan(calls), self._send)
            # Each master runs its calls as a plan of its own (as Scripts does).
            return await routes.spread(
                calls,
                routes.node_of_call,
                lambda node, group: run_async(
                    self.store.scripts.plan(group),
                    lambda part: self._send(part, routes.pool(node)),
                ),
            )
        if routes is None:
            return await self._send(commands)
        return await routes.execute(commands, self._send)

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[Callable[[Sequence[Command]], Awaitable[list[Any]]]]:
        """An executor on a connection of its own (for blocking reads, which must not
        hold one of the pool's), closed at the end."""
        if self.store.cluster:
            routes = AsyncRoutes(self.store.client, 1)
            try:
                yield lambda commands: routes.execute(commands, self._send)
            finally:
                await routes.close()
            return
        pool = aredis.ConnectionPool.from_url(self.store.url, max_connections=1)
        try:
            yield lambda commands: self._send(commands, pool)
        finally:
            await _maybe_await(pool.disconnect())

    async def _send(self, commands: Sequence[Command], pool: Any = None) -> list[Any]:
        """The commands in one write on a connection of ``pool`` (default: the face's),
        their raw replies in order (an error reply in place, as its
        ``redis.ResponseError``)."""
        try:
            packed = b"".join([pack_command(tuple(command)) for command in commands])
        except TypeError as exc:
            raise redis.DataError(str(exc)) from exc
        if pool is None:
            pool = self.client.connection_pool
        conn: Any = await pool.get_connection()  # (untyped)
        try:
            await conn.send_packed_command([packed])
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await conn.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            # Cut off between sending and reading (cancelled, or the connection broke):
            # the replies left unread would be the next user's.
            await conn.disconnect()
            raise
        finally:
            await _maybe_await(pool.release(conn))
        return replies

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()``, retried as ``Store.retrying`` does while Redis is
        unreachable (without blocking the loop)."""
        outage = Outage(self.store.retry_for_s)
        while True:
            try:
                result = await call()
            except redis.ConnectionError as exc:
                wait_s = outage.backoff(exc)
                if wait_s is None:
                    raise
                await asyncio.sleep(wait_s)
                continue
            outage.over()
            return result

    async def close(self) -> None:
        """Close the subscription and the pool."""
        await self.endings.close()
        if self._routes is not None:
            await self._routes.close()  # the subscription's pool among them
        else:
            await _maybe_await(self.client.connection_pool.disconnect())


class AsyncEndings:
    """``Endings`` on an event loop: one pattern subscription, read by one task, started
    at the first wait; waiters get an ``asyncio.Event`` set when their workflow ends (or
    the subscription broke: look again)."""

    def __init__(
        self,
        client: aredis.Redis,
        pattern: str,
        subscriber: Callable[[bool], Awaitable[aredis.Redis]] | None = None,
    ) -> None:
        self._client = client
        self._subscriber = subscriber
        """On a cluster: a master's client for each subscription (True: after one broke)."""
        self._pattern = pattern
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def watch(self, workflow_id: str, timeout_s: float = 10.0) -> asyncio.Event:
        """An event set when ``workflow_id`` ends; waits up to ``timeout_s`` for the
        subscription to be made (an end published after it returns is not missed)."""
        event = asyncio.Event()
        self._waiters.setdefault(workflow_id, set()).add(event)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout_s)
        return event

    def unwatch(self, workflow_id: str, event: asyncio.Event) -> None:
        waiting = self._waiters.get(workflow_id)
        if waiting is not None:
            waiting.discard(event)
            if not waiting:
                del self._waiters[workflow_id]

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        backoff_s = 0.0
        while True:
            client = self._client
            if self._subscriber is not None:
                client = await self._subscriber(backoff_s > 0)
            pubsub = client.pubsub()
            try:
                await pubsub.psubscribe(self._pattern)
                while True:
                    message = await pubsub.get_message(timeout=LISTEN_S)
                    if message is not None:
                        backoff_s = 0.0
                        self._handle(message)
            except redis.ConnectionError as exc:
                if not backoff_s:
                    log.warning("endings_subscription_lost", error=str(exc))
                backoff_s = min(max(backoff_s * 2, 0.05), 2.0)
            finally:
                self._subscribed.clear()
                self._wake_all()
                await _maybe_await(getattr(pubsub, "aclose", pubsub.close)())
            await asyncio.sleep(backoff_s)

    def _handle(self, message: dict[str, Any]) -> None:
        dispatch(message, self._subscribed_now, self._ended)

    def _subscribed_now(self) -> None:
        self._subscribed.set()
        self._wake_all()

    def _ended(self, workflow_id: str) -> None:
        for event in self._waiters.get(workflow_id, ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()


async def _maybe_await(value: Any) -> None:
    """Await ``value`` if it is awaitable (redis-py made some methods coroutines over
    its versions)."""
    if inspect.isawaitable(value):
        await value
