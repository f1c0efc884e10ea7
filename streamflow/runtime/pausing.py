"""Pauses at work: a worker sets aside ("parks") the messages of paused queues and
actors as it reads them, instead of starting them; the timer puts parked messages back
on their queues once neither their queue nor their actor is paused. A parked message
left its queue, so no lease runs out on it and no delivery is counted against it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from streamflow.logs import get_logger
from streamflow.model.messages import shard_of
from streamflow.runtime.jobs import Job
from streamflow.store import pauses, scripts
from streamflow.store.connection import Store
from streamflow.store.pauses import Paused, parked_entry, parked_of
from streamflow.store.plan import Command, checked

log = get_logger(__name__)

UNPARK_CHUNK = 1000


class PauseWatch:
    """What is paused, read at most once per ``pauses.PAUSE_LOOK_S``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._paused = Paused()
        self._read_at = -math.inf

    def now(self) -> Paused:
        if time.monotonic() - self._read_at >= pauses.PAUSE_LOOK_S:
            self._paused = pauses.read(self.store.client, self.store.keys)
            self._read_at = time.monotonic()
        return self._paused

    def hold(self, jobs: list[Job]) -> list[Job]:
        """The jobs that may start; those a pause holds are parked (one round trip).

        Raises:
            redis.RedisError: Redis failed (the messages stay pending: delivered again).
        """
        paused = self.now()
        if not paused:  # the common case: one check per batch
            return jobs
        held = [job for job in jobs if _holds(paused, job)]
        if not held:
            return jobs
        keys = self.store.keys
        calls = []
        for job in held:
            shard, queue, actor = shard_of(job.workflow_id), job.task.options.queue, job.task.actor
            calls.append(
                scripts.park(
                    queue=job.queue_key,
                    parked=keys.parked(shard, queue, actor),
                    index=keys.parked_index(shard),
                    msg_id=job.msg_id,
                    message=job.data,
                    entry=parked_entry(queue, actor),
                )
            )
        for result in self.store.scripts.batch(calls):
            if isinstance(result, Exception):
                raise result
        for job in held:
            log.debug(
                "task_parked",
                workflow_id=job.workflow_id,
                node=job.node,
                attempt=job.attempt,
                actor=job.task.actor,
            )
        parked = {id(job) for job in held}
        return [job for job in jobs if id(job) not in parked]


def _holds(paused: Paused, job: Job) -> bool:
    return paused.holds(job.task.options.queue, job.task.actor)


def unpark(
    store: Store,
    shards: Iterable[int],
    execute: Callable[[Sequence[Command]], list[Any]] | None = None,
) -> int:
    """Put back on their queues the parked messages no pause holds any more (one look
    at the shards' parked indexes, then the moves in one round trip); returns how many
    went back (a full chunk means more may wait: call again)."""
    keys = store.keys
    shards = list(shards)
    look: list[Command] = [("SMEMBERS", keys.parked_index(shard)) for shard in shards]
    indexes = (execute or store.execute)(look)
    if not any(indexes):
        return 0
    paused = pauses.read(store.client, keys)
    calls = []
    for shard, members in zip(shards, indexes, strict=True):
        for raw in checked(members) or ():
            entry = raw.decode() if isinstance(raw, bytes) else raw
            queue, actor = parked_of(entry)
            if paused.holds(queue, actor):
                continue
            calls.append(
                scripts.unpark(
                    parked=keys.parked(shard, queue, actor),
                    queue=keys.queue(shard, queue),
                    index=keys.parked_index(shard),
                    limit=UNPARK_CHUNK,
                    entry=entry,
                )
            )
    moved = 0
    for result in store.scripts.batch(calls) if calls else []:
        if isinstance(result, Exception):
            raise result
        moved += int(result)
    if moved:
        log.info("tasks_unparked", count=moved)
    return moved
