"""Reading a workflow's history, from its live log or from its archive."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis

from streamflow.model import schema
from streamflow.model.archive import decode_archive
from streamflow.model.errors import WorkflowNotFoundError
from streamflow.model.events import RawEntry
from streamflow.store.keys import Keys
from streamflow.store.plan import Command, Plan, checked, one, pipelined, run

READ_CHUNK = 1000
_EVENT = schema.EVENT_FIELD.encode()
_SEQ = schema.SEQ_FIELD.encode()


def parse_raw(raw: list[Any]) -> list[RawEntry]:
    """Stream entries as returned by XRANGE (or a script) into raw entries."""
    out: list[RawEntry] = []
    for stream_id, fields in raw:
        if isinstance(fields, dict):
            payload, seq = fields[_EVENT], fields[_SEQ]
        else:
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            payload, seq = values[_EVENT], values[_SEQ]
        sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        out.append((sid, int(seq), payload))
    return out


def iter_log(client: redis.Redis, key: str, after: str = "0-0") -> Iterator[RawEntry]:
    """Every entry of a live log after stream id ``after``, read in chunks."""
    while True:
        raw: Any = client.xrange(key, min=f"({after}", max="+", count=READ_CHUNK)
        chunk = parse_raw(raw)
        yield from chunk
        if len(chunk) < READ_CHUNK:
            return
        after = chunk[-1][0]


def raw_plan(keys: Keys, workflow_id: str) -> Plan[tuple[list[RawEntry], bool]]:
    """A workflow's whole log, and whether it came from the archive: one round trip for
    an archived workflow and for a live log of up to ``READ_CHUNK`` entries.

    Raises:
        WorkflowNotFoundError: neither a log nor an archive exists.
    """
    log_key = keys.log(workflow_id)
    for _ in range(3):
        archived, first = yield [
            ("GET", keys.archive(workflow_id)),
            ("XRANGE", log_key, "-", "+", "COUNT", READ_CHUNK),
        ]
        if checked(archived) is not None:
            return decode_archive(archived), True
        entries = parse_raw(checked(first))
        if not entries:
            # No log: unknown, or archived between the two reads (look again).
            continue
        if len(entries) < READ_CHUNK:
            return entries, False  # one XRANGE reads a whole log or nothing of it
        entries += yield from log_plan(keys, workflow_id, after=entries[-1][0])
        # A log archived while we read it is gone (XLEN 0): read the archive instead.
        if entries and (yield from one(("XLEN", log_key))) >= len(entries):
            return entries, False
    raise WorkflowNotFoundError(workflow_id)


def log_plan(keys: Keys, workflow_id: str, after: str = "0-0") -> Plan[list[RawEntry]]:
    """Every entry of a live log after stream id ``after``, read in chunks (none: no
    live log)."""
    log_key = keys.log(workflow_id)
    entries: list[RawEntry] = []
    while True:
        chunk = parse_raw(
            (yield from one(("XRANGE", log_key, f"({after}", "+", "COUNT", READ_CHUNK)))
        )
        entries += chunk
        if len(chunk) < READ_CHUNK:
            return entries
        after = chunk[-1][0]


def read_raw(client: redis.Redis, keys: Keys, workflow_id: str) -> tuple[list[RawEntry], bool]:
    """``raw_plan`` carried out on a pipeline of ``client``.

    Raises:
        WorkflowNotFoundError: neither a log nor an archive exists.
    """
    return run(raw_plan(keys, workflow_id), pipelined(client))


def many_plan(
    keys: Keys, workflow_ids: list[str]
) -> Plan[list[tuple[list[RawEntry], bool] | None]]:
    """``raw_plan`` of many workflows in one round trip: each one's log and whether it
    came from the archive, or None where one round trip does not tell (no log nor
    archive, or a log longer than ``READ_CHUNK``): read those with ``raw_plan``."""
    commands: list[Command] = []
    for workflow_id in workflow_ids:
        commands.append(("GET", keys.archive(workflow_id)))
        commands.append(("XRANGE", keys.log(workflow_id), "-", "+", "COUNT", READ_CHUNK))
    replies = yield commands
    out: list[tuple[list[RawEntry], bool] | None] = []
    for archived, first in zip(replies[::2], replies[1::2], strict=True):
        if checked(archived) is not None:
            out.append((decode_archive(archived), True))
        elif checked(first) and len(first) < READ_CHUNK:
            out.append((parse_raw(first), False))
        else:
            out.append(None)
    return out
