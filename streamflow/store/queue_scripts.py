"""The wrappers of the scripts that keep queues, workers and schedules (not one
workflow's state): each returns the ``Call`` that runs its Lua file (see
``streamflow.store.scripts``, which re-exports them)."""

from __future__ import annotations

from collections.abc import Sequence

from streamflow.store.calls import Call, flag


def timer_move(*, delayed: str, stream: str, limit: int) -> Call:
    """``timer_move.lua``: move the due members of ``delayed`` into ``stream``."""
    return Call("timer_move", [delayed, stream], [limit])


def park(*, queue: str, parked: str, index: str, msg_id: str, message: bytes, entry: str) -> Call:
    """``park.lua``: set a paused actor's (or queue's) message aside, out of its queue."""
    return Call("park", [queue, parked, index], [msg_id, message, entry])


def unpark(*, parked: str, queue: str, index: str, limit: int, entry: str) -> Call:
    """``unpark.lua``: put parked messages back on their queue (and forget an emptied
    parked set)."""
    return Call("unpark", [parked, queue, index], [limit, entry])


def renew(*, queue: str, consumer: str, idle_ms: int, msg_ids: Sequence[str]) -> Call:
    """``renew.lua``: renew (or with a large ``idle_ms``, hand back) leases still ours."""
    return Call("renew", [queue], [consumer, idle_ms, *msg_ids])


def limit(
    *,
    limiter: str,
    limit: int,
    token: str,
    score_ms: int,
    cutoff_ms: int,
    ttl_ms: int,
    bucket_ms: int = 0,
) -> Call:
    """``limit.lua``: take a rate limiter's slot if one is free."""
    return Call("limit", [limiter], [limit, token, score_ms, cutoff_ms, ttl_ms, bucket_ms])


def beat(*, beats: str, consumer: str, forget_ms: int | None = None, leave: bool = False) -> Call:
    """``beat.lua``: this consumer is alive (or, with ``leave``, gone for good)."""
    return Call("beat", [beats], [consumer, "" if forget_ms is None else forget_ms, flag(leave)])


def reclaim(
    *,
    stream: str,
    beats: str,
    group: str,
    suspect: str,
    consumer: str,
    dead_before: int,
    count: int,
) -> Call:
    """``reclaim.lua``: take over the pending messages of ``suspect`` if it is dead."""
    return Call("reclaim", [stream, beats], [group, suspect, consumer, dead_before, count])


def give_back(
    *, queue: str, beats: str, msg_id: str, owner: str, taken_ms: int, consumer: str
) -> Call:
    """``give_back.lua``: return a message taken over to its owner if it beats again
    (1), or tell one no longer held (2); 0: run it."""
    return Call("give_back", [queue, beats], [msg_id, owner, taken_ms, consumer])


def schedule_claim(
    *,
    schedule: str,
    pending: str,
    read: int,
    cursor: int,
    skipped: int,
    lease_ms: int,
    ticks: Sequence[str],
) -> Call:
    """``schedule_claim.lua``: move a schedule's cursor from ``read`` to ``cursor`` and
    hold ``ticks`` as pending (returns 0 if another process moved it first)."""
    return Call("schedule_claim", [schedule, pending], [read, cursor, skipped, lease_ms, *ticks])


def schedule_take(*, pending: str, lease_ms: int, limit: int) -> Call:
    """``schedule_take.lua``: the pending ticks whose lease is over, leased again."""
    return Call("schedule_take", [pending], [lease_ms, limit])


def schedule_done(
    *, schedule: str, pending: str, tick: str, workflow_id: str, tick_ms: str, outcome: str
) -> Call:
    """``schedule_done.lua``: a pending tick was submitted (``workflow_id``) or passed
    over (``''``, counted as ``outcome``: ``overlapped`` or ``failed``)."""
    return Call("schedule_done", [schedule, pending], [tick, workflow_id, tick_ms, outcome])
