"""Redis Cluster: connecting, and sending commands of many slots to the masters that own
them.

redis-py's ``RedisCluster`` serves the ordinary commands (routing, topology refresh,
retries). The hot paths send raw pipelines on ``Wire``s; on a cluster, ``Routes`` holds
one ``Wire`` per master, sends each command to the master of its first key's slot (one
pipeline per master, replies put back in submission order), and follows the cluster
when it moves: a command answered MOVED refreshes the slot's owner and is sent again,
one answered ASK, TRYAGAIN or CLUSTERDOWN (a slot migrating, a failover under way) is
sent again after a short wait, and a connection that broke refreshes the topology and
sends that master's commands again. Sending again is safe: every script is idempotent
(a repeated call finds its effect done and changes nothing) and reads change nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url

from streamflow.logs import get_logger
from streamflow.store.wire import Wire

log = get_logger(__name__)

SCHEMES = ("redis+cluster", "rediss+cluster")
REDIRECTS = (redis.exceptions.AskError, redis.exceptions.TryAgainError)
"""Error replies that say the command did not run where it was sent (``MovedError`` is
an ``AskError``)."""
UNAVAILABLE = (redis.exceptions.ClusterDownError, redis.ConnectionError, redis.TimeoutError)
UNBLOCKED = "UNBLOCKED"
"""How a blocked read is told that its stream left the node."""
ATTEMPTS = 8
"""Sends of one command before its error stands (about 5 s of waiting in all)."""
_KEYLESS = {b"INFO", b"SCRIPT", b"TIME", b"WAIT", b"WAITAOF", b"PING", b"CLUSTER", b"CONFIG"}
_SCRIPTED = {b"EVAL", b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO", b"FCALL", b"FCALL_RO"}


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return url.partition("://")[0].lower() in SCHEMES


def connect(url: str, *, cluster: bool = False) -> redis.Redis:
    """A client for ``url``: a ``RedisCluster`` for a cluster URL or ``cluster=True``, a
    plain ``Redis`` otherwise.

    A cluster URL lists one or more nodes to start from:
    ``redis+cluster://[user:password@]host:port[,host:port...][?param=value]``; the rest
    of the cluster is found from them.

    Raises:
        ValueError: a cluster URL with no node, or a port that is not a number.
        redis.ConnectionError: no node of the cluster answered (a cluster's client
            learns the topology at once).
    """
    if not is_cluster_url(url):
        if cluster:
            return _reached(lambda: RedisCluster.from_url(url), url)
        return redis.Redis.from_url(url)
    parts = urlsplit(url)
    credentials, _, addresses = parts.netloc.rpartition("@")
    nodes = []
    for address in addresses.split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(
                f"a cluster URL lists nodes as host:port (got {address!r} in "
                f"{url.partition('@')[2] or url!r})"
            )
        nodes.append(ClusterNode(host.strip("[]"), int(port)))  # type: ignore[no-untyped-call]
    # The options (credentials, ?socket_timeout=...) as redis-py reads a node's URL.
    scheme = "rediss" if parts.scheme.lower().startswith("rediss") else "redis"
    at = f"{credentials}@" if credentials else ""
    read_url: Any = parse_url  # typed in some redis-py versions, not in others
    options: dict[str, Any] = read_url(
        f"{scheme}://{at}{nodes[0].host}:{nodes[0].port}/?{parts.query}"
    )
    for taken in ("host", "port", "db", "connection_class"):
        options.pop(taken, None)
    extra: dict[str, Any] = {"ssl": True} if scheme == "rediss" else {}
    return _reached(lambda: RedisCluster(startup_nodes=nodes, **options, **extra), url)


def _reached(make: Callable[[], RedisCluster], url: str) -> redis.Redis:
    """The cluster's client ``make`` builds (a ``RedisCluster`` where the engine takes a
    client: it answers the same commands; redis-py types them apart).

    Raises:
        redis.ConnectionError: no node answered.
    """
    try:
        found: Any = make()
    except redis.exceptions.RedisClusterException as exc:
        if "cannot be connected" not in str(exc):  # not a cluster, say (told as it is)
            raise
        where = url.rpartition("@")[2]
        raise redis.ConnectionError(f"no node of the Redis Cluster {where} answered") from exc
    return found  # type: ignore[no-any-return]


def slot_key(command: Sequence[Any]) -> Any:
    """The key that routes ``command`` (its first), or None for a command with none."""
    name = command[0]
    name = (name if isinstance(name, bytes) else str(name).encode()).upper()
    if name in _SCRIPTED:
        return command[3] if int(command[2]) > 0 else None
    if name in (b"XREAD", b"XREADGROUP"):
        at = [str(part).upper() for part in command].index("STREAMS")
        return command[at + 1]
    if name in _KEYLESS or len(command) < 2:
        return None
    return command[1]


class Routes:
    """One ``Wire`` per master of ``client``'s cluster, for one caller at a time.

    Args:
        client: the cluster's client (its topology, and each node's pool).
    """

    def __init__(self, client: RedisCluster) -> None:
        self.client = client
        self._wires: dict[str, Wire] = {}
        self._lock = threading.Lock()
        """Guards ``_wires`` (the store's reads are shared by an App's threads; each
        ``Wire`` serves one caller at a time)."""

    def node_of(self, key: Any) -> ClusterNode:
        """The master that owns ``key``'s slot (any one for None).

        Raises:
            redis.exceptions.SlotNotCoveredError: the slot has no master now.
        """
        client: Any = self.client  # redis-py leaves these untyped
        if key is None:
            return cast(ClusterNode, client.get_default_node())
        node = client.nodes_manager.get_node_from_slot(client.keyslot(key))
        return cast(ClusterNode, node)

    def wire(self, node: ClusterNode) -> Wire:
        """The held connection to ``node``."""
        found = self._wires.get(node.name)
        if found is None or found.client is not node.redis_connection:
            with self._lock:
                found = self._wires.get(node.name)
                if found is None or found.client is not node.redis_connection:
                    if found is not None:
                        found.close()
                    found = self._wires[node.name] = Wire(node.redis_connection)
        return found

    def execute(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Each command sent to the master of its slot, one pipeline per master; replies
        in the commands' order, error replies in place (as ``Wire.execute``).

        Raises:
            redis.ConnectionError, redis.TimeoutError: a master stayed unreachable.
        """
        return self.spread(
            commands,
            lambda command: self.node_of(slot_key(command)),
            lambda node, group: self.wire(node).execute(group),
        )

    def spread(
        self,
        items: Sequence[Any],
        node_of: Callable[[Any], ClusterNode],
        send: Callable[[ClusterNode, list[Any]], list[Any]],
    ) -> list[Any]:
        """``send`` each master its share of ``items`` and gather the replies in order;
        what was redirected, or cut off by a broken connection, is sent again (see
        ``Rounds``).

        Raises:
            redis.ConnectionError, redis.TimeoutError: a master stayed unreachable.
            redis.exceptions.SlotNotCoveredError: a slot stayed without a master.
        """
        rounds = Rounds(items, node_of)
        while True:
            for node, indexes in rounds.groups():
                try:
                    rounds.took(indexes, send(node, [items[i] for i in indexes]))
                except UNAVAILABLE as exc:
                    rounds.failed(indexes, exc)
            after = rounds.next()
            if after is None:
                return rounds.replies
            if rounds.refresh:
                self.refresh()
            time.sleep(after)

    def refresh(self) -> None:
        """Learn the cluster's topology again (after a node went away)."""
        try:
            self.client.nodes_manager.initialize()
        except redis.RedisError as exc:  # no node answered yet: the next attempt retries
            log.warning("cluster_topology_unreadable", error=str(exc))

    def close(self) -> None:
        """Give every held connection back to its node's pool."""
        wires, self._wires = self._wires, {}
        for wire in wires.values():
            wire.close()


class Rounds:
    """Sending ``items`` to the masters of their slots, round after round until none is
    left to send again: the bookkeeping, shared by the threads' and the event loop's
    senders (which do the sending, the waiting and the refreshing).

    A reply MOVED (the slot has another master) is sent again at once, once the
    topology is refreshed; ASK, TRYAGAIN and CLUSTERDOWN (a slot migrating, a failover
    under way) after a wait that doubles each round; a master that could not be reached
    refreshes the topology and its items go again after that wait. After ``ATTEMPTS``
    rounds the last error stands: in place for a reply, raised for a connection.
    """

    def __init__(self, items: Sequence[Any], node_of: Callable[[Any], ClusterNode]) -> None:
        self.items = items
        self.node_of = node_of
        self.replies: list[Any] = [None] * len(items)
        self.refresh = False
        """Whether the topology must be learnt again before the next round."""
        self._todo = list(range(len(items)))
        self._again: list[int] = []
        self._wait = False
        self._round = 0

    @property
    def last(self) -> bool:
        return self._round == ATTEMPTS - 1

    def groups(self) -> list[tuple[ClusterNode, list[int]]]:
        """This round's items (their indexes) by the master each goes to.

        Raises:
            redis.exceptions.SlotNotCoveredError: on the last round, a slot has no
                master.
        """
        self._again, self.refresh, self._wait = [], False, False
        groups: dict[str, tuple[ClusterNode, list[int]]] = {}
        for i in self._todo:
            try:
                node = self.node_of(self.items[i])
            except redis.exceptions.SlotNotCoveredError:
                if self.last:
                    raise
                self._again.append(i)
                self.refresh = self._wait = True
                continue
            groups.setdefault(node.name, (node, []))[1].append(i)
        return list(groups.values())

    def took(self, indexes: list[int], replies: list[Any]) -> None:
        """A master's replies to the items at ``indexes``."""
        for i, reply in zip(indexes, replies, strict=True):
            self.replies[i] = reply
            if isinstance(reply, redis.exceptions.MovedError):
                self._again.append(i)
                self.refresh = True
            elif isinstance(reply, (*REDIRECTS, redis.exceptions.ClusterDownError)):
                self._again.append(i)
                self._wait = True
            elif isinstance(reply, redis.ResponseError) and str(reply).startswith(UNBLOCKED):
                # A blocking read whose stream moved away (the slot migrated) mid-read.
                self._again.append(i)
                self.refresh = True

    def failed(self, indexes: list[int], error: Exception) -> None:
        """A master could not be reached (``error``) for the items at ``indexes``.

        Raises:
            Exception: ``error``, on the last round.
        """
        if self.last:
            raise error
        self._again += indexes
        self.refresh = self._wait = True

    def next(self) -> float | None:
        """Seconds to wait before the next round (after refreshing the topology if
        ``refresh``), or None: done."""
        if not self._again or self.last:
            return None
        wait_s = min(0.05 * 2**self._round, 2.0) if self._wait else 0.0
        self._todo, self._round = sorted(self._again), self._round + 1
        return wait_s


def is_cluster(client: object) -> bool:
    """Whether ``client`` is a cluster's (a ``RedisCluster``)."""
    return isinstance(client, RedisCluster)


def primaries(client: object) -> int:
    """How many masters share ``client``'s slots (1 for a single Redis)."""
    if not isinstance(client, RedisCluster):
        return 1
    found: Any = client
    return max(1, len(found.get_primaries()))


def master_clients(client: Any) -> list[redis.Redis]:
    """A plain client of each master (``client`` itself for a single Redis)."""
    if not isinstance(client, RedisCluster):
        return [client]
    found: Any = client
    return [found.get_redis_connection(node) for node in found.get_primaries()]
