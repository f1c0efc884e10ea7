"""Following a workflow live: its events as they are appended, one implementation for
both faces of a handle (``WorkflowHandle.events``, ``AsyncWorkflowHandle.events``).

The follower reads what the log holds after the last event it gave, then waits for
more with a blocking read on the workflow's own stream (XREAD BLOCK, on a connection of
its own). It ends once the log is replaced by its archive: the workflow has ended and
nothing more can be appended. Redis does not wake a blocked XREAD when the log is
replaced, so the read is renewed every ``BLOCK_MS`` to look.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from typing import Any

from streamflow.model.archive import decode_archive
from streamflow.model.errors import ResultMissing
from streamflow.model.events import Entry, RawEntry, to_entry
from streamflow.store.connection import Store
from streamflow.store.log import READ_CHUNK, parse_raw
from streamflow.store.plan import Command, checked, one

BLOCK_MS = 250
"""How long one blocking read waits for new events before the follower looks whether
the workflow has ended (been archived)."""


class Events(list[Entry]):
    """Events a follow plan gives its caller (not commands to send)."""


class Blocking(list[Command]):
    """Commands a follow plan sends on its own connection (they block it)."""


Step = Sequence[Command] | Events
Follow = Generator[Step, list[Any], None]


def follow_plan(store: Store, workflow_id: str, after: int) -> Follow:
    """The events of ``workflow_id`` after sequence number ``after`` (0: from the first),
    as they are appended, until it ends.

    Raises:
        ResultMissing: no such workflow (``unknown``), or removed (``expired``).
    """
    keys = store.keys
    log_key = keys.log(workflow_id)
    last_id, seen = "0-0", after
    while True:
        archived, fresh = yield [
            ("GET", keys.archive(workflow_id)),
            ("XRANGE", log_key, f"({last_id}", "+", "COUNT", READ_CHUNK),
        ]
        if checked(archived) is not None:
            yield Events(to_entry(raw) for raw in decode_archive(archived) if raw[1] > seen)
            return
        entries = parse_raw(checked(fresh))
        if not entries and last_id == "0-0":
            if (yield from one(("EXISTS", keys.tombstone(workflow_id)))):
                raise ResultMissing(workflow_id, "expired")
            if not (yield from one(("EXISTS", log_key))):
                raise ResultMissing(workflow_id, "unknown")
        if not entries:
            (reply,) = yield Blocking(
                [("XREAD", "BLOCK", BLOCK_MS, "COUNT", READ_CHUNK, "STREAMS", log_key, last_id)]
            )
            entries = _stream_entries(checked(reply))
        if entries:
            last_id = entries[-1][0]
            new = [to_entry(raw) for raw in entries if raw[1] > seen]
            seen = max(seen, entries[-1][1])
            if new:
                yield Events(new)


def _stream_entries(reply: Any) -> list[RawEntry]:
    """The entries of an XREAD reply on one stream (RESP2 list, or RESP3 map)."""
    if not reply:
        return []
    streams = list(reply.values()) if isinstance(reply, dict) else [s[1] for s in reply]
    return parse_raw(streams[0]) if streams else []


def follow(
    plan: Follow,
    execute: Callable[[Sequence[Command]], list[Any]],
    blocking: Callable[[Sequence[Command]], list[Any]],
) -> Iterator[Entry]:
    """Carry out a follow plan on this thread: its commands by ``execute``, its blocking
    reads by ``blocking``; its events are this iterator's."""
    step = next(plan, None)
    while step is not None:
        if isinstance(step, Events):
            yield from step
            reply: list[Any] = []
        else:
            reply = (blocking if isinstance(step, Blocking) else execute)(step)
        step = _next(plan, reply)


async def follow_async(
    plan: Follow,
    execute: Callable[[Sequence[Command]], Awaitable[list[Any]]],
    blocking: Callable[[Sequence[Command]], Awaitable[list[Any]]],
) -> AsyncIterator[Entry]:
    """``follow`` on an event loop."""
    step = next(plan, None)
    while step is not None:
        if isinstance(step, Events):
            for entry in step:
                yield entry
            reply: list[Any] = []
        else:
            reply = await (blocking if isinstance(step, Blocking) else execute)(step)
        step = _next(plan, reply)


def _next(plan: Follow, reply: list[Any]) -> Step | None:
    """The plan's next step after ``reply`` (None: it has ended)."""
    try:
        return plan.send(reply)
    except StopIteration:
        return None
