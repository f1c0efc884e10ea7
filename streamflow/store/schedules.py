"""Schedules in Redis: per schedule a hash of its settings (written by each worker that
serves it, so ``streamflow schedules`` shows them) and its state (the cursor: every tick
up to it is dealt with; paused or not; counts; the last run), and a sorted set of its
ticks to submit (``keys.schedule_pending``), each with a lease."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from streamflow.model.schedules import ScheduleSpec
from streamflow.store.keys import Keys

_SETTINGS = ("cron", "tz", "catch_up", "max_catch_up", "misfire_grace_ms", "jitter_ms", "overlap")


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleState:
    """A schedule as Redis holds it."""

    spec: ScheduleSpec
    cursor_ms: int
    """Every tick up to this time is dealt with (submitted, pending or skipped)."""
    paused: bool = False
    fired: int = 0
    """Ticks (and manual triggers) that submitted a workflow."""
    skipped: int = 0
    """Ticks missed and passed over by the catch-up policy (or while paused)."""
    overlapped: int = 0
    """Ticks passed over because the previous run had not ended (``overlap='skip'``)."""
    pending: int = 0
    """Ticks claimed or triggered, not yet submitted."""
    last_workflow_id: str = ""
    last_tick_ms: int | None = None
    last_fired_ms: int | None = None


def register(client: Any, keys: Keys, spec: ScheduleSpec, now_ms: int) -> None:
    """Write ``spec``'s settings; a new schedule's cursor starts at ``now_ms`` (nothing
    before it is due)."""
    key = keys.schedule(spec.name)
    pipe = client.pipeline(transaction=False)
    pipe.hset(key, mapping={field: str(getattr(spec, field)) for field in _SETTINGS})
    pipe.hsetnx(key, "cursor_ms", now_ms)
    pipe.sadd(keys.schedules(), spec.name)
    pipe.execute()


def read(client: Any, keys: Keys, name: str) -> ScheduleState | None:
    """The schedule named ``name`` (None: no worker registered it)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.schedule(name))
    pipe.zcard(keys.schedule_pending(name))
    fields, pending = pipe.execute()
    if not fields or b"cursor_ms" not in fields:
        return None
    got = {k.decode(): v.decode() for k, v in fields.items()}
    numbers = {f: int(got[f]) for f in ("max_catch_up", "misfire_grace_ms", "jitter_ms")}
    spec = ScheduleSpec(
        name=name,
        cron=got["cron"],
        tz=got["tz"],
        catch_up=got["catch_up"],
        overlap=got["overlap"],
        **numbers,
    )
    return ScheduleState(
        spec=spec,
        cursor_ms=int(got["cursor_ms"]),
        paused=got.get("paused") == "1",
        fired=int(got.get("fired", 0)),
        skipped=int(got.get("skipped", 0)),
        overlapped=int(got.get("overlapped", 0)),
        pending=int(pending),
        last_workflow_id=got.get("last_workflow_id", ""),
        last_tick_ms=int(got["last_tick_ms"]) if "last_tick_ms" in got else None,
        last_fired_ms=int(got["last_fired_ms"]) if "last_fired_ms" in got else None,
    )


def names(client: Any, keys: Keys) -> list[str]:
    """Every registered schedule's name, sorted."""
    return sorted(n.decode() for n in client.smembers(keys.schedules()))


def _known(client: Any, keys: Keys, name: str) -> None:
    if not client.sismember(keys.schedules(), name):
        known = ", ".join(names(client, keys)) or "none"
        raise ValueError(f"no schedule is named {name!r} (registered: {known})")


def set_paused(client: Any, keys: Keys, name: str, paused: bool) -> None:
    """Pause a schedule (its ticks pass by, skipped) or resume it.

    Raises:
        ValueError: no schedule is named ``name``.
    """
    _known(client, keys, name)
    client.hset(keys.schedule(name), "paused", "1" if paused else "0")


def trigger(client: Any, keys: Keys, name: str) -> str:
    """Ask for a run of ``name`` now, out of its ticks; returns the trigger's tick key
    (a worker serving the schedule submits it within a second or so).

    Raises:
        ValueError: no schedule is named ``name``.
    """
    _known(client, keys, name)
    tick = f"manual-{os.urandom(8).hex()}"
    client.zadd(keys.schedule_pending(name), {tick: 0})
    return tick


def delete(client: Any, keys: Keys, name: str) -> None:
    """Forget a schedule's state (a worker whose code still has it registers it again,
    from now on: pause it instead to stop it).

    Raises:
        ValueError: no schedule is named ``name``.
    """
    _known(client, keys, name)
    client.delete(keys.schedule(name))
    client.delete(keys.schedule_pending(name))
    client.srem(keys.schedules(), name)
