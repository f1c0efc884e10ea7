"""One Redis as the engine uses it: the client, the key names, the scripts, the stored
definitions and the dead letters, and riding out the server's outages."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import redis

from streamflow.logs import get_logger
from streamflow.model.errors import StreamflowError
from streamflow.model.schema import WORKER_GROUP
from streamflow.store.cluster import Routes, connect, is_cluster, primaries
from streamflow.store.deadletters import DeadLetters
from streamflow.store.definitions import DEFAULT_CACHE_SIZE, Definitions
from streamflow.store.endings import Endings
from streamflow.store.keys import Keys
from streamflow.store.plan import Command, Plan, one
from streamflow.store.runner import Scripts
from streamflow.store.scripts import Call
from streamflow.store.wire import Wire

log = get_logger(__name__)
T = TypeVar("T")
SHARDS_PER_MASTER = 16
"""The default shard count on a cluster, per master: resharding moves whole shards, and
a master added later still gets its share."""


def masked(url: str) -> str:
    """``url`` with its password (in the address, or a ``password=`` parameter) replaced
    by ``***``: what logs, errors and reprs show."""
    url = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)


class Store:
    """Everything below the runtime that talks to one Redis (or one Redis Cluster).

    Args:
        url: the Redis URL (``redis+cluster://host:port[,host:port...]`` for a cluster).
        cluster: ``url`` names a node of a Redis Cluster (whatever its scheme).
        prefix: prefix of every key.
        shards: number of shards workflows are spread over (default: 1 on a single
            Redis; on a cluster, the count recorded there, else 16 per master).
        replicas: with more than 0, writes wait for that many replicas (WAITAOF/WAIT).
        wait_timeout_ms: how long they wait.
        retry_for_s: how long ``retrying`` rides out an unreachable Redis.
        definition_cache_size: definitions kept in memory at most.
    """

    def __init__(
        self,
        url: str,
        *,
        cluster: bool = False,
        prefix: str = "sf",
        shards: int | None = None,
        replicas: int = 0,
        wait_timeout_ms: int = 1000,
        retry_for_s: float = 30.0,
        definition_cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if shards is not None and shards < 1:
            raise ValueError(f"shards must be at least 1 (got {shards!r})")
        self.url = url
        self.retry_for_s = retry_for_s
        # A cluster's client learns the topology at once: wait for one (a worker may
        # start before Redis, as on one Redis).
        self.client = self.retrying(lambda: connect(url, cluster=cluster))
        self.cluster = is_cluster(self.client)
        """Whether Redis is a cluster (commands routed to the masters of their slots)."""
        self.keys = Keys(prefix)
        self.shards = shards or self._default_shards()
        self.scripts = Scripts(self.client, replicas=replicas, wait_timeout_ms=wait_timeout_ms)
        self.definitions = Definitions(self.client, self.keys, definition_cache_size)
        self.dead_letters = DeadLetters(self.client, self.keys)
        self.endings = Endings(self.client, self.keys.done_pattern())
        self.reads = self.wire()
        """A held connection for reading results (cheaper than a pipeline per read)."""
        self.losses = 0
        """Times this process found state the server had lost (see ``lost``)."""
        self.shards_checked = False
        """Whether this process has compared its shard count with Redis's (``shards_plan``)."""

    def wire(self) -> Wire | Routes:
        """A connection of this store's own (on a cluster, one per master), for one
        caller at a time: ``execute`` a list of commands, ``close`` when done."""
        if self.cluster:
            return Routes(cast(Any, self.client))
        return Wire(self.client)

    def _default_shards(self) -> int:
        """1 on a single Redis; on a cluster, the count recorded there (the workflows'
        spread), else 16 per master."""
        if not self.cluster:
            return 1
        stored = self.client.get(self.keys.shard_count())
        return int(stored) if stored is not None else SHARDS_PER_MASTER * primaries(self.client)

    def execute(self, commands: Sequence[Command]) -> list[Any]:
        """A plan's executor on this thread (``streamflow.store.plan``): script calls
        (``Call``) go with the scripts' coalesced pipelines, other commands on ``reads``."""
        if commands and isinstance(commands[0], Call):
            return self.scripts.batch(cast(Sequence[Call], commands))
        return self.reads.execute(commands)

    def shards_plan(self) -> Plan[None]:
        """Record this store's shard count in Redis if none is, else refuse another one
        (a worker of fewer shards would never serve the rest, an App of more would
        submit to shards no worker reads).

        Raises:
            StreamflowError: Redis holds another count, naming both.
        """
        key = self.keys.shard_count()
        stored = yield from one(("SET", key, self.shards, "NX", "GET"))
        if stored is not None and int(stored) != self.shards:
            raise StreamflowError(
                f"this App has shards={self.shards}, but the workflows in {masked(self.url)} "
                f"(prefix {self.keys.prefix!r}) are spread over {int(stored)} shards (key "
                f"{key!r}): give every App and worker shards={int(stored)}"
            )
        self.shards_checked = True

    def lost(self, what: str, **context: object) -> None:
        """Redis lost state it had (restarted without its data, flushed, failed over to an
        empty replica): said loudly, and counted."""
        self.losses += 1
        log.error("redis_state_lost", lost=what, url=masked(self.url), **context)

    def __repr__(self) -> str:
        return f"Store({masked(self.url)!r})"

    def retrying(self, call: Callable[[], T]) -> T:
        """``call()``, retried with a capped backoff while Redis is unreachable, for at
        most ``retry_for_s`` seconds; logs once when Redis goes away and once when back.

        Raises:
            redis.ConnectionError: Redis stayed unreachable.
        """
        outage = Outage(self.retry_for_s)
        while True:
            try:
                result = call()
            except redis.ConnectionError as exc:  # BusyLoadingError (AOF loading) too
                wait_s = outage.backoff(exc)
                if wait_s is None:
                    raise
                time.sleep(wait_s)
                continue
            outage.over()
            return result

    def now_ms(self, shard: int | None = None) -> int:
        """The Redis clock (one clock for the whole system); on a cluster, the clock of
        ``shard``'s master, the one its scripts stamp its streams and sets with."""
        client = self.client
        if self.cluster and shard is not None:
            cluster: Any = self.client
            client = cluster.get_redis_connection(
                cluster.get_node_from_key(self.keys.active(shard))
            )
        seconds, micros = client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def ack(self, queue_key: str, msg_id: str) -> None:
        """Acknowledge and delete a handled task message (never trimmed: deleted once
        handled)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(queue_key, WORKER_GROUP, msg_id)
        pipe.xdel(queue_key, msg_id)
        pipe.execute()

    def close(self) -> None:
        """Close the subscription, the scripts' connection and the pool."""
        self.endings.close()
        self.reads.close()
        self.scripts.close()
        self.client.close()


class Outage:
    """Riding out an unreachable Redis for at most ``retry_for_s`` seconds: a capped
    backoff between tries; said once when Redis goes away and once when it is back."""

    def __init__(self, retry_for_s: float) -> None:
        self._deadline = time.monotonic() + retry_for_s
        self._backoff_s = 0.0

    def backoff(self, error: Exception) -> float | None:
        """Seconds to wait before the next try after one failed with ``error`` (None:
        give up)."""
        if time.monotonic() + self._backoff_s > self._deadline:
            return None
        if not self._backoff_s:
            log.warning("redis_unreachable", error=str(error))
        self._backoff_s = min(max(self._backoff_s * 2, 0.05), 2.0)
        return self._backoff_s

    def over(self) -> None:
        """A try went through."""
        if self._backoff_s:
            log.warning("redis_reachable_again")
