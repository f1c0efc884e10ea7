"""Definitions by content hash: stored once, read once (they are immutable)."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterable
from typing import Any, TypeVar

import redis

from streamflow.model.definition import Definition
from streamflow.model.errors import DefinitionError
from streamflow.model.messages import shard_of
from streamflow.store.keys import Keys
from streamflow.store.plan import Plan, one

DEFAULT_CACHE_SIZE = 1024

K = TypeVar("K")
V = TypeVar("V")


class Definitions:
    """Definitions by content hash, read from Redis once and kept while recently used.

    Each shard holds the definitions of its workflows (a script reaches only its own
    shard's keys), counted by the workflows that use them: the submit script stores the
    definition if needed and counts a new workflow in, the removal after its retention
    counts it out, and the last one out removes the definition.

    Args:
        client: the Redis client.
        keys: the key names.
        cache_size: definitions kept in memory at most (the least recently used go).
    """

    def __init__(self, client: redis.Redis, keys: Keys, cache_size: int = DEFAULT_CACHE_SIZE):
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1 (got {cache_size!r})")
        self._client = client
        self._keys = keys
        self._size = cache_size
        self._cache: collections.OrderedDict[str, Definition] = collections.OrderedDict()
        self._stored: collections.OrderedDict[tuple[int, str], None] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def stored(self, shard: int, def_hash: str) -> bool:
        """Whether this process stored (or found) the definition on ``shard`` (it may
        have been removed since: the submit script says so)."""
        return (shard, def_hash) in self._stored

    def remember(self, shard: int, definition: Definition) -> None:
        """The definition is stored on ``shard`` (a submit script stored or found it)."""
        _keep(self._stored, (shard, definition.hash), None, self._size)
        _keep(self._cache, definition.hash, definition, self._size)

    def get(self, def_hash: str, workflow_id: str) -> Definition:
        """The definition stored under ``def_hash``, as workflow ``workflow_id`` uses it.

        Raises:
            DefinitionError: nothing is stored under that hash on the workflow's shard.
        """
        found = self._cached(def_hash)
        if found is None:
            data: Any = self._client.get(self._keys.definition(shard_of(workflow_id), def_hash))
            found = self._decoded(def_hash, data)
        return found

    def get_plan(self, def_hash: str, workflow_id: str) -> Plan[Definition]:
        """``get`` as a plan (``streamflow.store.plan``)."""
        found = self._cached(def_hash)
        if found is None:
            key = self._keys.definition(shard_of(workflow_id), def_hash)
            found = self._decoded(def_hash, (yield from one(("GET", key))))
        return found

    def _cached(self, def_hash: str) -> Definition | None:
        found = self._cache.get(def_hash)
        if found is not None:
            with contextlib.suppress(KeyError):  # evicted meanwhile by another thread
                self._cache.move_to_end(def_hash)
        return found

    def _decoded(self, def_hash: str, data: bytes | None) -> Definition:
        if data is None:
            raise DefinitionError(f"no definition stored under hash {def_hash!r}")
        found = Definition.from_bytes(data)
        _keep(self._cache, def_hash, found, self._size)
        return found

    def find(self, def_hash: str, shards: Iterable[int]) -> Definition:
        """The definition stored under ``def_hash`` on any of ``shards`` (when the
        workflow using it is not known).

        Raises:
            DefinitionError: none of the shards holds it.
        """
        found = self._cache.get(def_hash)
        if found is not None:
            return found
        pipe = self._client.pipeline(transaction=False)
        for shard in shards:
            pipe.get(self._keys.definition(shard, def_hash))
        for data in pipe.execute():
            if data is not None:
                found = Definition.from_bytes(data)
                _keep(self._cache, def_hash, found, self._size)
                return found
        raise DefinitionError(f"no definition stored under hash {def_hash!r}")


def _keep(cache: collections.OrderedDict[K, V], key: K, value: V, size: int) -> None:
    cache[key] = value
    while len(cache) > size:
        # Another thread may have emptied it meanwhile.
        try:
            cache.popitem(last=False)
        except KeyError:
            break
