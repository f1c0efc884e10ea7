"""Options recorded in definitions and submissions: an actor's options, the history
budget, and user durations as whole milliseconds."""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import math
import os
import re
import warnings

DEFAULT_QUEUE = "default"
QUEUE_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9._-]*")
"""What a queue name may be (as dramatiq has it): no ':' or '{' either, which key names
and hash tags use."""


LOOKS_LIKE_MS = 1000
"""A whole number of seconds from this on, for a duration usually short (a time limit, a
backoff, a delay), warns: it looks like milliseconds, dramatiq's unit."""


def to_ms(value: float | datetime.timedelta | None, name: str, *, short: bool = False) -> int:
    """Seconds (or a timedelta) as whole milliseconds, validated; ``short``: the duration
    is usually short, so an int from ``LOOKS_LIKE_MS`` seconds on warns (a float or a
    timedelta says it is meant)."""
    if value is None:
        return 0
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    elif short and type(value) is int and value >= LOOKS_LIKE_MS:
        warnings.warn(
            f"{name}={value} is {value} seconds ({value / 3600:.1f} h): streamflow's "
            f"durations are seconds (dramatiq's are milliseconds); for {value} ms pass "
            f"{value / 1000:g}; to mean {value} seconds, pass {value}.0 or a timedelta",
            UserWarning,
            stacklevel=_outside_streamflow(),
        )
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a non-negative number of seconds (got {value!r})")
    return round(value * 1000)


def _outside_streamflow() -> int:
    """The ``stacklevel`` of the first caller outside this package (the user's line)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = inspect.currentframe(), 0
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ActorOptions:
    """What the definition records about an actor (everything ``decide`` needs)."""

    queue: str = DEFAULT_QUEUE
    """Queue its messages go to."""
    max_retries: int = 0
    """Retries after a failed attempt before the node fails for good."""
    min_backoff_ms: int = 1000
    """Delay before the first retry; doubles per retry, with jitter."""
    max_backoff_ms: int = 60_000
    """Upper bound of the retry delay."""
    time_limit_ms: int | None = None
    """Longest a single attempt may run (None: no limit)."""
    result_ttl_ms: int | None = None
    """Keep a finished workflow running this actor at least this long."""
    max_age_ms: int | None = None
    """Longest a message may wait in its queue before a worker takes it (None: no
    limit); an older one is not run, and fails with ``AgeLimitExceeded``."""
    priority: int = 0
    """Among the messages a worker fetched, lower numbers start first; each level is
    worth a second of waiting, so none starves (``runtime.pool``)."""


MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryBudget:
    """How long a workflow's log may grow (Temporal's limits by default).

    Past ``warn_events`` events or ``warn_bytes`` encoded bytes, a ``HistoryWarning``
    event is recorded and logged once; past ``max_events`` or ``max_bytes``, the workflow
    fails with ``HistoryLimitExceeded`` (its ``on_failure`` callback still runs). Checked
    whenever an outcome is projected; a group member's success that decides nothing is
    not projected while the log is below the next event count the budget acts at
    (``warn_events``, then ``max_events`` once the warning is recorded), so the byte
    sizes are then checked at the next projected outcome.
    """

    warn_events: int = 10_000
    warn_bytes: int = 10 * MiB
    max_events: int = 50_000
    max_bytes: int = 50 * MiB

    def __post_init__(self) -> None:
        for name in ("warn_events", "warn_bytes", "max_events", "max_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"HistoryBudget.{name} must be a positive int (got {value!r})")
        if self.warn_events > self.max_events or self.warn_bytes > self.max_bytes:
            raise ValueError(f"a HistoryBudget must warn before its limit (got {self!r})")

    def option(self) -> list[int]:
        """The form recorded in a submission's options (``history``)."""
        return [self.warn_events, self.warn_bytes, self.max_events, self.max_bytes]
