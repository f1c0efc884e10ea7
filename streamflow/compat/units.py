"""Durations as dramatiq gives them (milliseconds), in streamflow's seconds."""

from __future__ import annotations

from typing import Any

RESULT_TIMEOUT_MS = 10_000
"""How long ``get_result(block=True)`` waits when given no ``timeout`` (dramatiq's)."""


def seconds_or_none(ms: Any, what: str) -> float | None:
    """A dramatiq duration (milliseconds) in seconds."""
    if ms is None:
        return None
    if isinstance(ms, bool) or not isinstance(ms, int | float) or ms < 0:
        raise ValueError(f"{what} must be a number of milliseconds, 0 or more (got {ms!r})")
    return ms / 1000


def seconds_of(ms: Any, what: str) -> float:
    """A dramatiq duration that must be given (milliseconds), in seconds."""
    found = seconds_or_none(ms, what)
    if found is None:
        raise ValueError(f"{what} must be a number of milliseconds, 0 or more (got None)")
    return found


def result_wait(timeout_ms: Any) -> float:
    """A result ``timeout`` (ms; None: dramatiq's 10 s) in seconds."""
    return seconds_of(RESULT_TIMEOUT_MS if timeout_ms is None else timeout_ms, "timeout")
