"""The projector's cache of folds: each workflow's state as far as this process has read
its log, caught up from where it stopped (``XRANGE`` after the last id seen)."""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence

from streamflow.model.events import RawEntry, to_entry
from streamflow.model.state import State, fold
from streamflow.store.connection import Store
from streamflow.store.log import iter_log


class Fold:
    """One workflow's cached state; hold ``lock`` to read or change it."""

    __slots__ = ("lock", "state")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state = State()


class Folds:
    """The most recently used workflows' folds (at most ``size``)."""

    def __init__(self, store: Store, size: int = 1024) -> None:
        self._store = store
        self._size = size
        self._lock = threading.Lock()
        self._folds: collections.OrderedDict[str, Fold] = collections.OrderedDict()

    def __contains__(self, workflow_id: object) -> bool:
        return workflow_id in self._folds

    def get(self, workflow_id: str) -> Fold:
        """The workflow's fold (a new, empty one if it was not cached)."""
        with self._lock:
            found = self._folds.get(workflow_id)
            if found is None:
                found = self._folds[workflow_id] = Fold()
                while len(self._folds) > self._size:
                    self._folds.popitem(last=False)
            else:
                self._folds.move_to_end(workflow_id)
            return found

    def forget(self, workflow_id: str) -> None:
        with self._lock:
            self._folds.pop(workflow_id, None)

    def last_id(self, workflow_id: str) -> str:
        """Stream id up to which the cached fold has read (``0-0``: nothing)."""
        return self.get(workflow_id).state.last_id

    def fold_raw(self, workflow_id: str, raw: Sequence[RawEntry]) -> bool:
        """Fold entries read elsewhere (returned by a script) into the cache.

        Returns whether the cache now ends exactly where ``raw`` ends (it may not: a cache
        evicted meanwhile starts over and cannot use a tail of the log).
        """
        cached = self.get(workflow_id)
        with cached.lock:
            for item in raw:
                if item[1] == cached.state.n + 1:
                    fold(cached.state, to_entry(item))
            return bool(raw) and cached.state.n == raw[-1][1]

    def catch_up(self, workflow_id: str, cached: Fold) -> None:
        """Fold the log's entries after the cached ones (hold ``cached.lock``)."""
        log_key = self._store.keys.log(workflow_id)
        for item in iter_log(self._store.client, log_key, cached.state.last_id):
            if item[1] == cached.state.n + 1:
                fold(cached.state, to_entry(item))
            elif item[1] > cached.state.n + 1:
                # A gap means the cache is not a prefix of this log (it was rebuilt or
                # replaced): start over from the beginning.
                cached.state = State()
                self.catch_up(workflow_id, cached)
                return
