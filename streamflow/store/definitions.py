"""Definitions by content hash: stored once, read once (they are immutable)."""

from __future__ import annotations

from typing import Any

import redis

from streamflow.model.definition import Definition
from streamflow.model.errors import DefinitionError
from streamflow.store.keys import Keys


class Definitions:
    """Definitions by content hash, read once from Redis (they are immutable)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._cache: dict[str, Definition] = {}

    def put(self, definition: Definition) -> None:
        """Store once (``SET NX``) and remember (a known hash costs no round trip)."""
        if definition.hash not in self._cache:
            self._client.set(self._keys.definition(definition.hash), definition.to_bytes, nx=True)
            self._cache[definition.hash] = definition

    def get(self, def_hash: str) -> Definition:
        """The definition stored under ``def_hash``.

        Raises:
            DefinitionError: nothing is stored under that hash.
        """
        found = self._cache.get(def_hash)
        if found is None:
            data: Any = self._client.get(self._keys.definition(def_hash))
            if data is None:
                raise DefinitionError(f"no definition stored under hash {def_hash!r}")
            found = self._cache[def_hash] = Definition.from_bytes(data)
        return found
