"""Definitions by content hash: stored once, read once (they are immutable)."""

from __future__ import annotations

import collections
import contextlib
from typing import Any

import redis

from streamflow.model.definition import Definition
from streamflow.model.errors import DefinitionError
from streamflow.store.keys import Keys

DEFAULT_CACHE_SIZE = 1024


class Definitions:
    """Definitions by content hash, read from Redis once and kept while recently used.

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

    def __len__(self) -> int:
        return len(self._cache)

    def put(self, definition: Definition, *, again: bool = False) -> None:
        """Store once (``SET NX``) and remember (a known hash costs no round trip);
        ``again``: store it even if known (the server lost it)."""
        if again or definition.hash not in self._cache:
            self._client.set(self._keys.definition(definition.hash), definition.to_bytes, nx=True)
            self._keep(definition.hash, definition)

    def get(self, def_hash: str) -> Definition:
        """The definition stored under ``def_hash``.

        Raises:
            DefinitionError: nothing is stored under that hash.
        """
        found = self._cache.get(def_hash)
        if found is not None:
            with contextlib.suppress(KeyError):  # evicted meanwhile by another thread
                self._cache.move_to_end(def_hash)
            return found
        data: Any = self._client.get(self._keys.definition(def_hash))
        if data is None:
            raise DefinitionError(f"no definition stored under hash {def_hash!r}")
        found = Definition.from_bytes(data)
        self._keep(def_hash, found)
        return found

    def _keep(self, def_hash: str, definition: Definition) -> None:
        self._cache[def_hash] = definition
        while len(self._cache) > self._size:
            # Another thread may have emptied it meanwhile.
            try:
                self._cache.popitem(last=False)
            except KeyError:
                break
