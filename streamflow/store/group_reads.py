"""A consumer's reads of its streams (every shard's queues) in its consumer group, from
one thread: ``group_reads`` gives the one for one Redis or for a cluster.

One Redis serves all of a consumer's streams in one blocking XREADGROUP
(``BlockingReads``); a cluster serves one slot per read, so each shard is read on its
own (``ClusterReads``). Under load, one round trip per master reads every shard there
(``Routes``: a pipeline per master, each shard's queues in one XREADGROUP). When nothing
was waiting, every shard gets a blocking read "parked" on a connection of its own, and
the thread waits on all their sockets at once (a selector): the first messages on any
shard wake it, as one blocking read would on one Redis, with no thread per shard. A
parked read that comes back empty is parked again next time; one that its master no
longer serves (MOVED, or UNBLOCKED when the slot migrated) or whose connection broke is
dropped, the topology refreshed, and parked again on the slot's new master.

Each shard's connection is the reader's own, made from its master's settings and never
in a pool, so no other command can be handed it with a read in flight; and a parked read
silent well past its BLOCK is given up and parked again, so that no shard can stall for
good. The reads serve one thread (a worker started twice once ran two fetch loops over
one reader: each read the other's replies, and messages stranded for a lease).
"""

from __future__ import annotations

import math
import selectors
import time
from collections.abc import Mapping
from typing import Any

import redis

from streamflow.logs import get_logger
from streamflow.store.cluster import UNBLOCKED, Routes
from streamflow.store.plan import checked
from streamflow.store.wire import Wire, stream_messages

log = get_logger(__name__)

OVERDUE_S = 5.0
"""How long past its BLOCK a parked read may stay silent before it is given up (never
seen: a socket closed under the reader, say) and parked again, so that no shard can
stall for good."""

Message = tuple[str, str, bytes]


def group_reads(
    wire: Wire | Routes, group: str, consumer: str, streams: Mapping[str, int], block_ms: int
) -> BlockingReads | ClusterReads:
    """The reads of consumer ``consumer`` of ``group`` on ``wire`` (a ``Routes`` for a
    cluster; the reads own it and close it): each stream in ``streams`` belongs to the
    shard it maps to; a read waits up to ``block_ms`` for messages."""
    if isinstance(wire, Routes):
        return ClusterReads(wire, group, consumer, streams, block_ms)
    return BlockingReads(wire, group, consumer, streams, block_ms)


class BlockingReads:
    """One Redis: every stream in one blocking XREADGROUP on a held connection."""

    def __init__(
        self, wire: Wire, group: str, consumer: str, streams: Mapping[str, int], block_ms: int
    ) -> None:
        timeout = wire.socket_timeout_s()
        if block_ms < 1 or (timeout is not None and block_ms >= timeout * 1000):
            limit = "" if timeout is None else f" and shorter than {timeout * 1000:g}"
            raise ValueError(
                f"block_ms must be at least 1{limit} (got {block_ms!r}): a read of the "
                "queues must end before the Redis connection's socket timeout, or it fails "
                "as a timeout (to wait longer, raise ?socket_timeout= in the Redis URL)"
            )
        self._wire = wire
        keys = list(streams)
        self._group: tuple[Any, ...] = ("XREADGROUP", "GROUP", group, consumer)
        self._block = ("BLOCK", block_ms, "STREAMS", *keys, *(">" for _ in keys))

    def read(self, count: int) -> list[Message]:
        """Up to ``count`` messages, waiting for the first.

        Raises:
            redis.ResponseError: the read failed (a consumer group is missing, say).
            redis.ConnectionError, redis.TimeoutError: Redis is unreachable.
        """
        (reply,) = self._wire.execute([(*self._group, "COUNT", count, *self._block)])
        return stream_messages(checked(reply))

    def drain(self) -> list[Message]:
        """Nothing is in flight between reads; the connection goes back."""
        self.close()
        return []

    def close(self) -> None:
        self._wire.close()


class _Parked:
    """A shard's blocking read in flight: the shard's connection, its socket's
    descriptor (what the selector watches) and when it was sent."""

    __slots__ = ("conn", "fd", "sent", "shard")

    def __init__(self, shard: int, conn: Any) -> None:
        self.shard = shard
        self.conn = conn
        # redis-py names no public accessor for a connection's socket.
        self.fd: int = conn._sock.fileno()  # noqa: SLF001
        self.sent = time.monotonic()

    def current(self) -> bool:
        """Whether the connection still has the socket the read was sent on."""
        sock = self.conn._sock  # noqa: SLF001
        return sock is not None and sock.fileno() == self.fd


class ClusterReads:
    """The reads of consumer ``consumer`` in ``group`` of each shard's ``streams``.

    Args:
        routes: the cluster's masters (held by this reader's thread only).
        group: the consumer group.
        consumer: the consumer's name.
        streams: each stream read, and its shard (a shard's streams share a slot).
        block_ms: how long a parked read waits for messages.
    """

    def __init__(
        self,
        routes: Routes,
        group: str,
        consumer: str,
        streams: Mapping[str, int],
        block_ms: int,
    ) -> None:
        self.routes = routes
        self.group = group
        self.consumer = consumer
        self.streams: dict[int, list[str]] = {}
        """Per shard, its streams."""
        for stream, shard in streams.items():
            self.streams.setdefault(shard, []).append(stream)
        self.block_ms = block_ms
        self._parked: dict[int, _Parked] = {}
        self._conns: dict[int, tuple[str, Any]] = {}
        """Per shard, its master's name and the connection its parked reads use."""
        self._selector = selectors.PollSelector()
        self._hot: set[int] = set()
        """Shards whose last read brought messages: read for the whole count next."""
        self._closed = False
        self._carried: list[Message] = []
        """Messages read beside a read that failed (a shard's group is missing, say):
        delivered to this consumer already, so handed out first by the next read."""

    def read(self, count: int) -> list[Message]:
        """Up to about ``count`` messages: those parked reads brought, then one read of
        every shard; when none came, park a read on every shard and wait up to
        ``block_ms`` for the first to come back.

        Raises:
            redis.ResponseError: a read failed (a consumer group is missing, say).
            redis.ConnectionError, redis.TimeoutError: a master stayed unreachable.
        """
        found, self._carried = self._carried, []
        if found:  # delivered beside a read that failed: theirs first, alone
            return found
        found = self._ready(0)
        if len(found) < count:
            found += self._pass(count - len(found))
        if found:
            return found
        self._park(count)
        return self._ready(self.block_ms / 1000)

    def drain(self) -> list[Message]:
        """The messages parked reads brought already, then the other parked reads cut
        (a read cut before its reply delivers nothing): what a stopping consumer holds."""
        try:
            found = self._ready(0)
        except redis.RedisError:
            found = []
        finally:
            self.close()
        found, self._carried = self._carried + found, []
        return found

    def close(self) -> None:
        """Cut the parked reads and close their connections (again: nothing); give the
        pipelines' connections back."""
        if self._closed:
            return
        self._closed = True
        for parked in list(self._parked.values()):
            self._drop(parked)
        for _, conn in self._conns.values():
            conn.disconnect()
        self._conns.clear()
        self._selector.close()
        self.routes.close()

    def _command(self, shard: int, count: int, block: bool) -> tuple[Any, ...]:
        keys = self.streams[shard]
        command: tuple[Any, ...] = ("XREADGROUP", "GROUP", self.group, self.consumer)
        command += ("COUNT", count)
        if block:
            command += ("BLOCK", self.block_ms)
        return (*command, "STREAMS", *keys, *(">" for _ in keys))

    def _share(self, shard: int, count: int) -> int:
        """What one read of ``shard`` asks for: the whole ``count`` for a shard that
        just had messages, a fair share for the others (a burst on every shard at once
        brings about ``count``, not ``count`` per shard)."""
        if shard in self._hot:
            return count
        return max(1, math.ceil(count / len(self.streams)))

    def _pass(self, count: int) -> list[Message]:
        """One read of every shard not parked, without blocking: a round trip per
        master."""
        shards = [s for s in self.streams if s not in self._parked]
        if not shards:
            return []
        commands = [self._command(s, self._share(s, count), block=False) for s in shards]
        found: list[Message] = []
        failed: list[redis.ResponseError] = []
        for shard, reply in zip(shards, self.routes.execute(commands), strict=True):
            if isinstance(reply, redis.ResponseError):
                failed.append(reply)
                continue
            messages = stream_messages(reply)
            if messages:
                self._hot.add(shard)
                found += messages
            else:
                self._hot.discard(shard)
        if failed:
            # The other shards' reads delivered their messages: kept for the next read.
            self._carried += found
            raise failed[0]
        return found

    def _park(self, count: int) -> None:
        """A blocking read on every shard that has none in flight."""
        for shard in self.streams:
            if shard in self._parked:
                continue
            conn = self._connection(shard)
            try:
                conn.send_command(*self._command(shard, self._share(shard, count), block=True))
            except (redis.ConnectionError, redis.TimeoutError):
                conn.disconnect()
                self.routes.refresh()
                continue
            parked = _Parked(shard, conn)
            stale = self._selector.get_map().get(parked.fd)
            if stale is not None:  # (never: its socket was closed under the selector)
                log.error("parked_read_stale", shard=stale.data.shard)
                self._forget(stale.data)
            self._parked[shard] = parked
            self._selector.register(parked.fd, selectors.EVENT_READ, parked)

    def _connection(self, shard: int) -> Any:
        """The connection of ``shard``'s parked reads, to the master of its slot now."""
        node = self.routes.node_of(self.streams[shard][0])
        held = self._conns.get(shard)
        if held is not None:
            if held[0] == node.name:
                return held[1]
            held[1].disconnect()
        pool = node.redis_connection.connection_pool
        conn = pool.connection_class(**pool.connection_kwargs)
        self._conns[shard] = (node.name, conn)
        return conn

    def _ready(self, timeout_s: float) -> list[Message]:
        """The messages of the parked reads that came back within ``timeout_s``."""
        if not self._parked:
            return []
        found: list[Message] = []
        ready: set[int] = set()
        for key, _ in self._selector.select(timeout_s):
            parked: _Parked = key.data
            ready.add(parked.shard)
            if self._parked.get(parked.shard) is not parked or not parked.current():
                log.error("parked_read_stale", shard=parked.shard)  # (never: said if so)
                self._drop(parked)
                continue
            try:
                reply = parked.conn.read_response()
            except redis.ResponseError as exc:
                self._drop(parked)
                if not self._moved(exc):
                    self._carried += found  # delivered already: the next read's
                    raise
                continue
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("parked_read_lost", shard=parked.shard, error=str(exc))
                self._drop(parked)
                self.routes.refresh()
                continue
            self._forget(parked)
            messages = stream_messages(reply)
            if messages:
                self._hot.add(parked.shard)
                found += messages
        overdue = time.monotonic() - self.block_ms / 1000 - OVERDUE_S
        for parked in list(self._parked.values()):
            if parked.shard not in ready and parked.sent < overdue:
                log.warning("parked_read_overdue", shard=parked.shard)
                self._drop(parked)
        return found

    def _moved(self, error: redis.ResponseError) -> bool:
        """Whether ``error`` says the slot is served elsewhere now (refreshing the
        topology if so)."""
        if isinstance(error, redis.exceptions.AskError | redis.exceptions.TryAgainError) or str(
            error
        ).startswith(UNBLOCKED):
            self.routes.refresh()
            return True
        return isinstance(error, redis.exceptions.ClusterDownError)

    def _forget(self, parked: _Parked) -> None:
        """No longer watch ``parked`` (its shard may be parked again)."""
        if self._parked.get(parked.shard) is parked:
            del self._parked[parked.shard]
        key = self._selector.get_map().get(parked.fd)
        if key is not None and key.data is parked:
            self._selector.unregister(parked.fd)

    def _drop(self, parked: _Parked) -> None:
        """A parked read is given up: its connection is closed if it still has the
        read's socket (a reply may be on its way), and reconnects when next used."""
        self._forget(parked)
        if parked.current():
            parked.conn.disconnect()
