"""Schedules, the pure part: what a schedule is, which of its cron ticks are due, and the
workflow id a tick submits (the same in every process, which is what makes a tick
submit one workflow however many workers look at it).

Cron expressions are read by croniter (the extra ``streamflow[schedules]``): five fields
(minutes), or a sixth for seconds, as croniter reads them, in the schedule's time zone.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
import zoneinfo
from collections.abc import Iterator
from typing import Any

CATCH_UP = ("skip", "latest", "all")
"""What a schedule does with ticks it missed (no worker ran, or it was paused):
``skip`` them (only ticks due within ``misfire_grace_ms`` are submitted), submit only
the ``latest``, or ``all`` of them (at most ``max_catch_up``, the newest)."""
OVERLAP = ("allow", "skip", "cancel")
"""What a tick does while the schedule's previous run has not ended: start anyway
(``allow``), not start (``skip``), or ``cancel`` the previous run, then start."""
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}", re.ASCII)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSpec:
    """A schedule's settings (its target, a canvas or a factory, lives with the App)."""

    name: str
    cron: str
    tz: str = "UTC"
    catch_up: str = "skip"
    max_catch_up: int = 10
    misfire_grace_ms: int = 60_000
    jitter_ms: int = 0
    """Each tick is due up to this long after its time (the same offset in every
    process: drawn from the name and the tick), so that many schedules on one minute
    do not all start at once."""
    overlap: str = "allow"

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                "a schedule's name is 1 to 100 letters, digits, '_', '.' or '-' "
                f"(got {self.name!r})"
            )
        if self.catch_up not in CATCH_UP:
            raise ValueError(f"catch_up must be one of {CATCH_UP} (got {self.catch_up!r})")
        if self.overlap not in OVERLAP:
            raise ValueError(f"overlap must be one of {OVERLAP} (got {self.overlap!r})")
        for field in ("max_catch_up", "misfire_grace_ms", "jitter_ms"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < (1 if field == "max_catch_up" else 0):
                raise ValueError(f"{field} must be a whole number >= 0 (got {value!r})")
        try:
            zoneinfo.ZoneInfo(self.tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"tz must be an IANA time zone like 'Europe/Paris' (got {self.tz!r})"
            ) from exc
        if not _croniter().is_valid(self.cron):
            raise ValueError(
                f"cron must be a cron expression like '*/5 * * * *' (got {self.cron!r})"
            )


def _croniter() -> Any:
    """croniter's class (imported here: it is an extra).

    Raises:
        ImportError: it is not installed, saying which extra brings it.
    """
    try:
        from croniter import croniter
    except ImportError as exc:
        raise ImportError("schedules need croniter: pip install 'streamflow[schedules]'") from exc
    return croniter


def ticks(spec: ScheduleSpec, after_ms: int) -> Iterator[int]:
    """The schedule's tick times after ``after_ms`` (epoch ms), in order, without end."""
    zone = zoneinfo.ZoneInfo(spec.tz)
    start = datetime.datetime.fromtimestamp(after_ms / 1000, tz=zone)
    times = _croniter()(spec.cron, start)
    while True:
        yield int(times.get_next(datetime.datetime).timestamp() * 1000)


def jitter_of(spec: ScheduleSpec, tick_ms: int) -> int:
    """How long after its time a tick is due (0 to ``jitter_ms``, from the name and the
    tick alone)."""
    if not spec.jitter_ms:
        return 0
    digest = hashlib.sha256(f"{spec.name}\0{tick_ms}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (spec.jitter_ms + 1)


@dataclasses.dataclass(frozen=True, slots=True)
class Due:
    """What a look at a schedule finds: the ticks to submit, and where its cursor goes
    (every tick up to it is dealt with, submitted or skipped)."""

    submit: tuple[int, ...]
    cursor_ms: int
    skipped: int
    """Ticks passed over (missed, beyond the catch-up policy)."""


SCAN_LIMIT = 100_000
"""Most ticks one look walks through (a per-second schedule missed for a day is 86,400)."""


def due(spec: ScheduleSpec, cursor_ms: int, now_ms: int) -> Due:
    """Which ticks after ``cursor_ms`` are due at ``now_ms`` (each at its time plus its
    jitter), and what the catch-up policy makes of them."""
    found: list[int] = []
    cursor = cursor_ms
    for tick in ticks(spec, cursor_ms):
        if tick + jitter_of(spec, tick) > now_ms or len(found) >= SCAN_LIMIT:
            break
        found.append(tick)
        cursor = tick
    if spec.catch_up == "all":
        chosen = found[-spec.max_catch_up :]
    elif spec.catch_up == "latest":
        chosen = found[-1:]
    else:
        chosen = [t for t in found if now_ms - (t + jitter_of(spec, t)) <= spec.misfire_grace_ms]
    return Due(tuple(chosen), cursor, len(found) - len(chosen))


def tick_workflow_id(name: str, tick_key: str, shards: int) -> str:
    """The workflow id a schedule's tick submits (``tick_key``: the tick's time, or a
    manual trigger's id): the same in every process, so one tick is one workflow."""
    digest = hashlib.sha256(f"schedule\0{name}\0{tick_key}".encode()).hexdigest()
    return f"{int(digest[24:40], 16) % shards}-{digest[:24]}"
