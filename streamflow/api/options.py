"""An actor's options, checked: its registration's (``actor_options``) and a message's
overrides (``overridden``), and the small checks they share."""

from __future__ import annotations

import datetime
from typing import Any

from streamflow.model.options import QUEUE_NAME, ActorOptions, to_ms


def actor_options(
    *,
    queue: str,
    max_retries: int,
    min_backoff: float,
    max_backoff: float,
    time_limit: float | None,
    result_ttl: float | None,
    max_age: float | None = None,
    priority: int = 0,
) -> ActorOptions:
    """An actor's options, checked (see ``App.actor`` for their meaning).

    Raises:
        ValueError: a bad queue name or retry count, or a duration out of range.
    """
    if not isinstance(queue, str) or not QUEUE_NAME.fullmatch(queue):
        raise ValueError(
            "a queue name is letters, digits, '.', '_' and '-', starting with a letter or "
            f"'_' (got {queue!r})"
        )
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0 (got {max_retries!r})")
    return ActorOptions(
        queue=queue,
        max_retries=max_retries,
        min_backoff_ms=to_ms(min_backoff, "min_backoff", short=True),
        max_backoff_ms=to_ms(max_backoff, "max_backoff"),
        time_limit_ms=None if time_limit is None else to_ms(time_limit, "time_limit", short=True),
        result_ttl_ms=None if result_ttl is None else to_ms(result_ttl, "result_ttl"),
        max_age_ms=None if max_age is None else to_ms(max_age, "max_age", short=True),
        priority=priority_of(priority),
    )


def priority_of(priority: Any) -> int:
    """``priority``, checked: a whole number (lower runs first; 0 by default).

    Raises:
        ValueError: anything else.
    """
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValueError(f"priority must be a whole number (got {priority!r})")
    return priority


def until(
    delay: float | datetime.timedelta | None, eta: datetime.datetime | None
) -> float | datetime.timedelta | None:
    """``delay``, or the time from now (this process's clock) to ``eta`` (none if past).

    Raises:
        ValueError: both are given, or ``eta`` is not a timezone-aware datetime.
    """
    if eta is None:
        return delay
    if delay is not None:
        raise ValueError(f"give delay or eta, not both (got delay={delay!r}, eta={eta!r})")
    if not isinstance(eta, datetime.datetime) or eta.tzinfo is None:
        raise ValueError(f"eta must be a timezone-aware datetime (got {eta!r})")
    return max(eta - datetime.datetime.now(datetime.UTC), datetime.timedelta(0))


def overridden(
    max_retries: int | None,
    min_backoff: float | datetime.timedelta | None,
    max_backoff: float | datetime.timedelta | None,
    time_limit: float | datetime.timedelta | None,
    max_age: float | datetime.timedelta | None = None,
    priority: int | None = None,
) -> dict[str, Any]:
    """The ``ActorOptions`` fields a message sets in place of its actor's (those given).

    Raises:
        ValueError: a retry count below 0, or a duration that is not one.
    """
    found: dict[str, Any] = {}
    if max_retries is not None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a whole number >= 0 (got {max_retries!r})")
        found["max_retries"] = max_retries
    if min_backoff is not None:
        found["min_backoff_ms"] = to_ms(min_backoff, "min_backoff", short=True)
    if max_backoff is not None:
        found["max_backoff_ms"] = to_ms(max_backoff, "max_backoff")
    if time_limit is not None:
        found["time_limit_ms"] = to_ms(time_limit, "time_limit", short=True)
    if max_age is not None:
        found["max_age_ms"] = to_ms(max_age, "max_age", short=True)
    if priority is not None:
        found["priority"] = priority_of(priority)
    return found


def exception_types(throws: Any) -> tuple[type[BaseException], ...]:
    """``throws`` as a tuple: an exception class, or a tuple (or list) of them.

    Raises:
        TypeError: anything else, naming it.
    """
    found = (throws,) if isinstance(throws, type) else throws
    if isinstance(found, tuple | list) and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in found
    ):
        return tuple(found)
    raise TypeError(f"throws must be an exception class or a tuple of them (got {throws!r})")
