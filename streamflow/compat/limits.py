"""dramatiq's rate limiters (durations in ms), on the broker's Redis."""

from __future__ import annotations

from typing import Any

from streamflow.api.app import App
from streamflow.compat.brokers import get_broker
from streamflow.compat.units import seconds_of
from streamflow.runtime import ratelimit


class _Limiter:
    """A rate limiter on the broker's Redis, made when first acquired (limiters are
    usually declared before the broker is set)."""

    def __init__(self, backend: Any, key: str, *, limit: int = 1) -> None:
        self.key = key
        self.limit = limit
        self._native: Any = None

    def _make(self, app: App) -> Any:
        raise NotImplementedError

    def acquire(self, *, raise_on_failure: bool = True) -> Any:
        """A context manager holding a slot (see ``streamflow.ConcurrentRateLimiter``).

        Raises:
            RateLimitExceeded: on entry, when none is free (unless ``raise_on_failure``
                is False: it enters with False).
        """
        if self._native is None:
            self._native = self._make(get_broker().app)
        return self._native.acquire(raise_on_failure=raise_on_failure)


class ConcurrentRateLimiter(_Limiter):
    """At most ``limit`` holders at once; ``ttl`` (ms) frees a crashed holder's slot."""

    def __init__(self, backend: Any, key: str, *, limit: int = 1, ttl: int = 900_000) -> None:
        super().__init__(backend, key, limit=limit)
        self.ttl = ttl

    def _make(self, app: App) -> Any:
        lease = seconds_of(self.ttl, "ttl")
        return ratelimit.ConcurrentRateLimiter(app, self.key, limit=self.limit, lease=lease)


class WindowRateLimiter(_Limiter):
    """At most ``limit`` acquisitions in any ``window`` seconds (seconds, as dramatiq's)."""

    def __init__(self, backend: Any, key: str, *, limit: int = 1, window: int = 1) -> None:
        super().__init__(backend, key, limit=limit)
        self.window = window

    def _make(self, app: App) -> Any:
        return ratelimit.WindowRateLimiter(app, self.key, limit=self.limit, window=self.window)


class BucketRateLimiter(_Limiter):
    """At most ``limit`` acquisitions per ``bucket`` ms."""

    def __init__(self, backend: Any, key: str, *, limit: int = 1, bucket: int = 1000) -> None:
        super().__init__(backend, key, limit=limit)
        self.bucket = bucket

    def _make(self, app: App) -> Any:
        bucket = seconds_of(self.bucket, "bucket")
        return ratelimit.BucketRateLimiter(app, self.key, limit=self.limit, bucket=bucket)
