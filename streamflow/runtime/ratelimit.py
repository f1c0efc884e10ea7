"""Rate limiters on Redis: a concurrent limiter (a distributed semaphore with a lease), a
sliding-window limiter and a bucket limiter (fixed windows). Inside an actor,
``RateLimitExceeded`` means "try again later": the attempt is retried after a backoff
without counting against ``max_retries``.

``with limiter.acquire(): ...`` and ``async with limiter.acquire(): ...`` both work.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Protocol

from streamflow.model.errors import RateLimitExceeded
from streamflow.model.options import to_ms
from streamflow.store import scripts
from streamflow.store.connection import Store


class HasStore(Protocol):
    """Where a limiter keeps its slots (an App)."""

    @property
    def store(self) -> Store: ...


class _Limiter:
    def __init__(self, app: HasStore, key: str, *, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1 (got {limit!r})")
        self.store = app.store
        self.key = key
        self.limit = limit
        self._redis_key = self.store.keys.limiter(key)

    def _score_and_cutoff(self) -> tuple[int, int, int]:
        raise NotImplementedError

    bucket_ms = 0
    """Fixed windows of this length (0: none)."""

    def take(self) -> str | None:
        """Take a slot if one is free; returns its token, or None."""
        token = os.urandom(8).hex()
        score, cutoff, lifetime = self._score_and_cutoff()
        call = scripts.limit(
            limiter=self._redis_key,
            limit=self.limit,
            token=token,
            score_ms=score,
            cutoff_ms=cutoff,
            ttl_ms=lifetime,
            bucket_ms=self.bucket_ms,
        )
        return token if int(self.store.scripts.run(call)) else None

    def release(self, token: str) -> None:
        """Give the slot back (a no-op for window limiters)."""

    def acquire(self, *, raise_on_failure: bool = True) -> _Acquired:
        """A context manager holding a slot while it is open.

        Raises:
            RateLimitExceeded: on entry, if no slot is free (unless ``raise_on_failure``
                is False: then it enters with ``False``).
        """
        return _Acquired(self, raise_on_failure)


class ConcurrentRateLimiter(_Limiter):
    """At most ``limit`` holders at once, across every process.

    Args:
        app: the App (its Redis and key prefix).
        key: the limiter's name.
        limit: holders at once.
        lease: seconds after which a holder that never released (it crashed) loses its
            slot; keep it above the longest protected section.
    """

    def __init__(self, app: HasStore, key: str, *, limit: int, lease: float = 30.0) -> None:
        super().__init__(app, key, limit=limit)
        self.lease_ms = to_ms(lease, "lease")

    def _score_and_cutoff(self) -> tuple[int, int, int]:
        return self.lease_ms, 0, self.lease_ms

    def release(self, token: str) -> None:
        self.store.client.zrem(self._redis_key, token)


class WindowRateLimiter(_Limiter):
    """At most ``limit`` acquisitions in any ``window`` seconds (sliding)."""

    def __init__(self, app: HasStore, key: str, *, limit: int, window: float) -> None:
        super().__init__(app, key, limit=limit)
        self.window_ms = to_ms(window, "window")

    def _score_and_cutoff(self) -> tuple[int, int, int]:
        return 0, -self.window_ms, self.window_ms


class BucketRateLimiter(_Limiter):
    """At most ``limit`` acquisitions per bucket: the Redis clock cut in fixed windows of
    ``bucket`` seconds (as dramatiq's; a burst may straddle two buckets)."""

    def __init__(self, app: HasStore, key: str, *, limit: int, bucket: float) -> None:
        super().__init__(app, key, limit=limit)
        self.bucket_ms = to_ms(bucket, "bucket")
        if self.bucket_ms < 1:
            raise ValueError(f"bucket must be at least 1 ms (got {bucket!r})")

    def _score_and_cutoff(self) -> tuple[int, int, int]:
        return 0, 0, self.bucket_ms


class _Acquired:
    def __init__(self, limiter: _Limiter, raise_on_failure: bool) -> None:
        self.limiter = limiter
        self.raise_on_failure = raise_on_failure
        self.token: str | None = None

    def __enter__(self) -> bool:
        self.token = self.limiter.take()
        if self.token is None and self.raise_on_failure:
            raise RateLimitExceeded(self.limiter.key, self.limiter.limit)
        return self.token is not None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.token is not None:
            self.limiter.release(self.token)

    async def __aenter__(self) -> bool:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
