"""The scheduler role: about once a second, a look at each schedule the App has. A look
claims the ticks due since the schedule's cursor (``model.schedules.due``: the catch-up
policy applied), then submits them; a pending tick whose submitting process died, or a
manual trigger, is taken by whichever look finds it first.

Every process with the timer role looks; a tick's workflow id is derived from the
schedule's name and the tick, so however many submit it, it is one workflow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from streamflow.model.schedules import ScheduleSpec, due
from streamflow.runtime.outage import Outage
from streamflow.runtime.roles import Role
from streamflow.store import schedules, scripts
from streamflow.store.connection import Store

LOOK_S = 1.0
"""How often each schedule is looked at."""
LEASE_MS = 30_000
"""How long a tick taken by a process stays its own to submit."""
TAKE_LIMIT = 100
"""Pending ticks one look takes at most."""

Fire = Callable[[ScheduleSpec, str, int | None, str], tuple[str, str]]
"""Submit a tick: (schedule, tick key, tick time or None for a trigger, the previous
run's workflow id) -> the workflow id submitted and ``fired``, or ``""`` and why not
(``overlapped``, ``failed``)."""


class Scheduler(Role):
    """Looks at ``specs`` every ``look_s`` and submits their ticks with ``fire``."""

    def __init__(
        self,
        store: Store,
        specs: Mapping[str, ScheduleSpec],
        fire: Fire,
        *,
        stopping: threading.Event,
        outage: Outage,
        log: Any,
        look_s: float = LOOK_S,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        super().__init__("scheduler", stopping, outage, log)
        self.store = store
        self.specs = specs
        self.fire = fire
        self.look_s = look_s
        self.now_ms = now_ms or (lambda: store.now_ms(0))
        """The clock ticks are due by (Redis's; tests set their own)."""
        self._registered: dict[str, ScheduleSpec] = {}

    def step(self) -> None:
        started = time.monotonic()
        for spec in list(self.specs.values()):
            self.look(spec)
        self.stopping.wait(max(0.0, self.look_s - (time.monotonic() - started)))

    def look(self, spec: ScheduleSpec) -> None:
        """Claim and submit ``spec``'s due ticks, then any pending ones left to take."""
        client, keys = self.store.client, self.store.keys
        now = self.now_ms()
        if self._registered.get(spec.name) != spec:
            schedules.register(client, keys, spec, now)
            self._registered[spec.name] = spec
        state = schedules.read(client, keys, spec.name)
        if state is None:  # deleted meanwhile: registered again at the next look
            self._registered.pop(spec.name, None)
            return
        found = due(spec, state.cursor_ms, now)
        chosen = () if state.paused else found.submit
        skipped = found.skipped + (len(found.submit) if state.paused else 0)
        if found.cursor_ms != state.cursor_ms or chosen:
            claim = scripts.schedule_claim(
                schedule=keys.schedule(spec.name),
                pending=keys.schedule_pending(spec.name),
                read=state.cursor_ms,
                cursor=found.cursor_ms,
                skipped=skipped,
                lease_ms=LEASE_MS,
                ticks=[str(t) for t in chosen],
            )
            if int(self.store.scripts.run(claim)):
                previous = state.last_workflow_id
                for tick_ms in chosen:
                    previous = self._submit(spec, str(tick_ms), tick_ms, previous) or previous
        taken = self.store.scripts.run(
            scripts.schedule_take(
                pending=keys.schedule_pending(spec.name), lease_ms=LEASE_MS, limit=TAKE_LIMIT
            )
        )
        previous = state.last_workflow_id
        for raw in taken:
            tick = raw.decode() if isinstance(raw, bytes) else str(raw)
            previous = (
                self._submit(spec, tick, int(tick) if tick.isdigit() else None, previous)
                or previous
            )

    def _submit(self, spec: ScheduleSpec, tick: str, tick_ms: int | None, previous: str) -> str:
        workflow_id, outcome = self.fire(spec, tick, tick_ms, previous)
        keys = self.store.keys
        done = scripts.schedule_done(
            schedule=keys.schedule(spec.name),
            pending=keys.schedule_pending(spec.name),
            tick=tick,
            workflow_id=workflow_id,
            tick_ms="" if tick_ms is None else str(tick_ms),
            outcome=outcome,
        )
        self.store.scripts.run(done)
        self._log.info(
            f"schedule_{outcome}", schedule=spec.name, tick=tick, workflow_id=workflow_id
        )
        return workflow_id
