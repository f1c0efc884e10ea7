"""The event loop's connections to a Redis Cluster: a pool per master, commands sent to
the masters of their slots, redirections and lost masters handled as the threads' face
handles them (``streamflow.store.cluster.Rounds``). The topology is the store's (its
``RedisCluster``), learnt again in a thread when the cluster moved."""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aredis
from redis.cluster import ClusterNode

from streamflow.store.cluster import UNAVAILABLE, Rounds, Routes, slot_key
from streamflow.store.plan import Command
from streamflow.store.scripts import Call

Send = Callable[[Sequence[Command], Any], Awaitable[list[Any]]]
"""Sends commands on a connection of a pool (the second argument), their replies."""


class AsyncRoutes:
    """A connection pool per master of ``client``'s cluster, for one event loop.

    Args:
        client: the cluster's (threads') client: its topology and credentials.
        max_connections: connections per master at most.
    """

    def __init__(self, client: Any, max_connections: int) -> None:
        self._routes = Routes(client)
        self._max = max_connections
        self._pools: dict[str, Any] = {}

    def pool(self, node: ClusterNode | None = None) -> Any:
        """The pool of ``node`` (default: any master)."""
        node = node or self._routes.node_of(None)
        found = self._pools.get(node.name)
        if found is None:
            found = self._pools[node.name] = _pool_like(node, self._max)
        return found

    async def any_master(self, fresh: bool = False) -> Any:
        """A client of a master picked at random (the subscription's: an end is told on
        every node); ``fresh``: learn the topology first (the last one went away)."""
        if fresh:
            await asyncio.to_thread(self._routes.refresh)
        cluster: Any = self._routes.client
        return aredis.Redis(connection_pool=self.pool(random.choice(cluster.get_primaries())))

    def node_of_command(self, command: Sequence[Any]) -> ClusterNode:
        return self._routes.node_of(slot_key(command))

    def node_of_call(self, call: Call) -> ClusterNode:
        return self._routes.node_of(call.keys[0] if call.keys else None)

    async def execute(self, commands: Sequence[Command], send: Send) -> list[Any]:
        """Each command on a connection to the master of its slot (one round trip per
        master), replies in order."""
        return await self.spread(
            commands, self.node_of_command, lambda node, group: send(group, self.pool(node))
        )

    async def spread(
        self,
        items: Sequence[Any],
        node_of: Callable[[Any], ClusterNode],
        send: Callable[[ClusterNode, list[Any]], Awaitable[list[Any]]],
    ) -> list[Any]:
        """``Routes.spread`` on the event loop: the masters are sent to one after the
        other, the waits are the loop's, the topology is learnt again in a thread."""
        rounds = Rounds(items, node_of)
        while True:
            for node, indexes in rounds.groups():
                try:
                    rounds.took(indexes, await send(node, [items[i] for i in indexes]))
                except UNAVAILABLE as exc:
                    rounds.failed(indexes, exc)
            after = rounds.next()
            if after is None:
                return rounds.replies
            if rounds.refresh:
                await asyncio.to_thread(self._routes.refresh)
            await asyncio.sleep(after)

    async def close(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            done = pool.disconnect()
            if inspect.isawaitable(done):
                await done


def _pool_like(node: ClusterNode, max_connections: int) -> Any:
    """An asyncio pool to ``node`` with the credentials and TLS of the threads' pool."""
    sync: Any = node.redis_connection
    kwargs = sync.connection_pool.connection_kwargs
    options: dict[str, Any] = {
        "host": node.host,
        "port": node.port,
        "username": kwargs.get("username"),
        "password": kwargs.get("password"),
        "max_connections": max_connections,
        "timeout": None,
    }
    if "SSL" in sync.connection_pool.connection_class.__name__:
        options["connection_class"] = aredis.SSLConnection
    return aredis.BlockingConnectionPool(**options)
