"""Redis reachability, shared by a worker's loops."""

from __future__ import annotations

import threading
from typing import Any

import redis


class Outage:
    """One log line per change (down, back), and a capped backoff while down."""

    def __init__(self, log: Any) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._backoff_s = 0.0

    def down(self, exc: BaseException) -> float:
        """Note a failure; returns how long to wait before trying again. Redis refusing a
        command (out of memory, read-only replica) is said as such, not as unreachable."""
        with self._lock:
            if not self._backoff_s:
                unreachable = isinstance(exc, (redis.ConnectionError, redis.TimeoutError))
                event = "redis_unreachable" if unreachable else "redis_refused"
                self._log.error(event, error=str(exc))
            self._backoff_s = min(max(self._backoff_s * 2, 0.1), 5.0)
            return self._backoff_s

    def up(self) -> None:
        """Note a success (logs once if Redis was down)."""
        if self._backoff_s:
            with self._lock:
                if self._backoff_s:
                    self._log.warning("redis_reachable_again")
                    self._backoff_s = 0.0
