"""The watch: enforces sync time limits, renews the leases of held messages, records the
start of lone tasks that run long, and tells running tasks that their workflow was
cancelled (or otherwise ended)."""

from __future__ import annotations

import threading
import time
from typing import Any

from streamflow.model import schema
from streamflow.runtime.jobs import Job
from streamflow.runtime.leases import Leases
from streamflow.runtime.limits import TimeLimits
from streamflow.runtime.lone import Lone
from streamflow.runtime.outage import Outage
from streamflow.runtime.roles import Role
from streamflow.store.connection import Store

TICK_S = 0.05
CANCEL_CHECK_S = 0.5


class Watch(Role):
    """Runs until ``released`` is set: past ``stopping``, while tasks are still in flight
    it keeps renewing their leases (the worker sets ``released`` once none is left, or
    once it handed them back)."""

    def __init__(
        self,
        store: Store,
        leases: Leases,
        limits: TimeLimits,
        lone: Lone | None,
        *,
        lease_ms: int,
        released: threading.Event,
        stopping: threading.Event,
        outage: Outage,
        log: Any,
    ) -> None:
        super().__init__("watch", stopping, outage, log)
        self.store = store
        self.leases = leases
        self.limits = limits
        self.lone = lone
        self.lease_ms = lease_ms
        self.released = released
        self._last_renew = self._last_check = 0.0

    def running(self) -> bool:
        return not self.released.is_set()

    def step(self) -> None:
        if self.released.wait(TICK_S):
            return
        self.limits.enforce()
        now = time.monotonic()
        held = self.leases.held()
        if self.lone is not None:
            self.lone.record_slow(held)  # lone tasks running long: their start recorded
        if now - self._last_renew > self.lease_ms / 3000:
            self._last_renew = now
            self.leases.renew(held)
        if now - self._last_check > CANCEL_CHECK_S:
            self._last_check = now
            self._check_cancelled(held)

    def _check_cancelled(self, jobs: list[Job]) -> None:
        running = [j for j in jobs if j.context is not None and not j.context.cancelled]
        if not running:
            return
        keys = self.store.keys
        pipe = self.store.client.pipeline(transaction=False)
        for job in running:
            pipe.hget(keys.idx(job.workflow_id), schema.STATUS)
            pipe.exists(keys.archive(job.workflow_id))
        replies = pipe.execute()
        for job, status, archived in zip(running, replies[::2], replies[1::2], strict=True):
            if archived or (status is not None and status.decode() in schema.TERMINAL_STATUSES):
                assert job.context is not None
                job.context.cancel()
                if job.future is not None:
                    job.future.cancel()
