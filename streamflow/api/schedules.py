"""Schedules: ``App.schedule`` runs a canvas (or what a factory makes of each tick) on a
cron, submitted by the workers' scheduler role (``runtime.scheduler``), one workflow per
tick; ``App.schedules``, ``pause_schedule``, ``resume_schedule``, ``trigger_schedule`` and
``delete_schedule`` act on them in Redis, for every worker."""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Callable
from typing import Any

from streamflow.api.canvas import Canvas, check_canvas
from streamflow.api.handles import WorkflowHandle
from streamflow.api.submit import Submission, write_workflow
from streamflow.logs import get_logger
from streamflow.model.errors import ResultMissing, WorkflowIdConflict
from streamflow.model.options import to_ms
from streamflow.model.schedules import ScheduleSpec, tick_workflow_id
from streamflow.runtime.observe import Observers
from streamflow.runtime.projector import Projector
from streamflow.store import schedules
from streamflow.store.connection import Store
from streamflow.store.schedules import ScheduleState

log = get_logger(__name__)

Target = Canvas | Callable[[datetime.datetime], Canvas]
"""What a schedule submits: a canvas, or a function of the tick's time (in the
schedule's time zone) that returns one."""


class Scheduling:
    """The App's schedule methods."""

    store: Store
    projector: Projector
    observers: Observers
    shards: int
    _prepare: Callable[..., Submission]
    handle: Callable[[str], WorkflowHandle[Any]]
    retrying: Callable[[Callable[[], Any]], Any]

    def __init__(self) -> None:
        self.schedule_specs: dict[str, ScheduleSpec] = {}
        """The schedules this App's workers serve, by name."""
        self._targets: dict[str, Target] = {}

    def schedule(
        self,
        name: str,
        target: Target,
        *,
        cron: str,
        tz: str = "UTC",
        catch_up: str = "skip",
        max_catch_up: int = 10,
        misfire_grace: float = 60.0,
        jitter: float = 0.0,
        overlap: str = "allow",
    ) -> ScheduleSpec:
        """Submit ``target`` on every tick of ``cron`` (in time zone ``tz``), from the
        workers of this App that run the timer role: one workflow per tick, whatever the
        number of workers (its id is derived from ``name`` and the tick), its
        ``WorkflowSubmitted`` naming the schedule and the tick.

        Args:
            name: the schedule's name (letters, digits, ``_``, ``.``, ``-``).
            target: a canvas, or a function of the tick's time returning one.
            cron: a cron expression (``*/5 * * * *``; a sixth field is seconds).
            tz: an IANA time zone (``Europe/Paris``): when the ticks fall.
            catch_up: ticks missed (no worker ran, or paused): ``skip`` them (only
                those due within ``misfire_grace`` run), run the ``latest``, or ``all``
                (the newest ``max_catch_up``).
            max_catch_up: with ``catch_up="all"``, at most this many missed ticks.
            misfire_grace: seconds a tick may be late and still run (``skip``).
            jitter: each tick runs up to this many seconds after its time (the same
                offset in every process).
            overlap: while the previous run has not ended: ``allow`` a new one,
                ``skip`` the tick, or ``cancel`` the previous run first.

        Raises:
            ValueError: a bad setting, named; or a schedule of that name exists.
            TypeError: ``target`` is neither a canvas nor callable.
            ImportError: croniter is missing (``pip install 'streamflow[schedules]'``).
        """
        if name in self.schedule_specs:
            raise ValueError(f"a schedule named {name!r} exists already in this App")
        if not callable(target):
            check_canvas(target, "a schedule's target")
        spec = ScheduleSpec(
            name=name,
            cron=cron,
            tz=tz,
            catch_up=catch_up,
            max_catch_up=max_catch_up,
            misfire_grace_ms=to_ms(misfire_grace, "misfire_grace"),
            jitter_ms=to_ms(jitter, "jitter"),
            overlap=overlap,
        )
        self.schedule_specs[name] = spec
        self._targets[name] = target
        return spec

    def schedules(self) -> list[ScheduleState]:
        """Every schedule a worker registered in Redis, with its state."""
        client, keys = self.store.client, self.store.keys
        found = [schedules.read(client, keys, name) for name in schedules.names(client, keys)]
        return [state for state in found if state is not None]

    def pause_schedule(self, name: str) -> None:
        """Pause a schedule for every worker: its ticks pass by, skipped (a trigger
        still runs).

        Raises:
            ValueError: no schedule of that name was registered.
        """
        schedules.set_paused(self.store.client, self.store.keys, name, True)

    def resume_schedule(self, name: str) -> None:
        """Resume a paused schedule (the ticks it missed are skipped)."""
        schedules.set_paused(self.store.client, self.store.keys, name, False)

    def trigger_schedule(self, name: str) -> str:
        """Run a schedule once now, out of its ticks; returns the workflow id it will
        have (a worker serving the schedule submits it within a second or so)."""
        tick = schedules.trigger(self.store.client, self.store.keys, name)
        return tick_workflow_id(name, tick, self.shards)

    def delete_schedule(self, name: str) -> None:
        """Forget a schedule's state in Redis (for one no longer in the code: a worker
        whose code has it registers it again, from now on)."""
        schedules.delete(self.store.client, self.store.keys, name)

    def fire_schedule(
        self, spec: ScheduleSpec, tick: str, tick_ms: int | None, previous: str
    ) -> tuple[str, str]:
        """Submit one tick of ``spec`` (``tick``: its key; ``tick_ms`` its time, None
        for a trigger); ``previous``: the schedule's last run. Returns the workflow id
        and ``fired``, or ``""`` and why not: ``overlapped`` or ``failed``."""
        if previous and spec.overlap != "allow" and self._running(previous):
            if spec.overlap == "skip":
                return "", "overlapped"
            self.handle(previous).cancel(reason=f"schedule {spec.name}: overlapped by a new run")
        when_ms = tick_ms if tick_ms is not None else self.store.now_ms(0)
        when = datetime.datetime.fromtimestamp(when_ms / 1000, zoneinfo.ZoneInfo(spec.tz))
        target = self._targets[spec.name]
        try:
            canvas = target(when) if callable(target) else target
            check_canvas(canvas, f"what schedule {spec.name!r} made of its tick")
            workflow_id = tick_workflow_id(spec.name, tick, self.shards)
            link = {"schedule": {"name": spec.name, "tick": tick}}
            submission = self._prepare(canvas, workflow_id, None, None, link)
        except Exception:
            log.exception("schedule_target_failed", schedule=spec.name, tick=tick)
            return "", "failed"
        try:
            with self.observers.submission([workflow_id]):
                self.retrying(lambda: write_workflow(self.store, self.projector, submission))
        except WorkflowIdConflict:
            # Another process submitted this tick first, its factory making other
            # arguments: that run stands.
            log.warning("schedule_tick_submitted_elsewhere", schedule=spec.name, tick=tick)
        return workflow_id, "fired"

    def _running(self, workflow_id: str) -> bool:
        try:
            return not self.handle(workflow_id).status().done
        except ResultMissing:  # removed after its retention: it ended
            return False
