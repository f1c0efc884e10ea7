"""Listing workflows, newest first: each shard's submitted index gives the newest ids, and
each one's line comes from its index (running), the shard's ended hash (ended, until its
retention) or, once archived, the summary its archive starts with. Reads derived keys
only, never a log (but for an archive written without a summary)."""

from __future__ import annotations

import dataclasses
from typing import Any

from streamflow.model import schema
from streamflow.model.archive import SUMMARY, ArchiveSummary, archive_summary
from streamflow.model.errors import WorkflowNotFoundError
from streamflow.model.events import TERMINAL, to_entry
from streamflow.model.messages import shard_of
from streamflow.model.schema import RUNNING, TERMINAL_STATUSES
from streamflow.model.state import fold_all
from streamflow.store.connection import Store
from streamflow.store.log import raw_plan
from streamflow.store.plan import Plan, checked, one, run

STATUSES = (RUNNING, *sorted(TERMINAL_STATUSES))
_BATCH = 500
_PAGE = 100
"""Ids read from a shard's submitted index at a time."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowSummary:
    """One line of a listing."""

    workflow_id: str
    status: str
    """``running``, ``completed``, ``failed`` or ``cancelled``."""
    submitted_ms: int
    """Redis time of the submission."""
    ended_ms: int | None
    """Redis time of the end (None while running)."""
    events: int
    """Length of the log (when it ended, for an ended one)."""


def list_workflows(
    store: Store, status: str | None = None, limit: int = 100
) -> list[WorkflowSummary]:
    """The most recently submitted workflows, newest first, optionally of one status.

    Raises:
        ValueError: an unknown status, or a limit below 1.
    """
    return run(list_plan(store, status, limit), store.execute)


def list_plan(store: Store, status: str | None, limit: int) -> Plan[list[WorkflowSummary]]:
    """``list_workflows`` as a plan (``streamflow.store.plan``), for both faces: per
    shard, the newest submissions from its index (``keys.submitted``), a page at a time
    until ``limit`` of the status asked for are found, so a listing costs what it shows,
    not what the shard keeps."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)} (got {status!r})")
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit!r})")
    found: list[WorkflowSummary] = []
    for shard in range(store.shards):
        found += yield from _newest(store, shard, status, limit)
    found.sort(key=lambda s: (s.submitted_ms, s.workflow_id), reverse=True)
    return found[:limit]


def _newest(
    store: Store, shard: int, status: str | None, limit: int
) -> Plan[list[WorkflowSummary]]:
    """The newest ``limit`` workflows of ``shard`` of ``status`` (any: None)."""
    yield from _indexed(store, shard)
    key, page = store.keys.submitted(shard), max(limit, _PAGE)
    out: list[WorkflowSummary] = []
    start = 0
    while len(out) < limit:
        raw = yield from one(("ZREVRANGE", key, start, start + page - 1))
        ids = [member.decode() for member in raw]
        out += [s for s in (yield from _summaries(store, ids)) if status in (None, s.status)]
        if len(ids) < page:
            break
        start += page
    return out


def _summaries(store: Store, ids: list[str]) -> Plan[list[WorkflowSummary]]:
    """Each kept workflow's line, from its index (running), the ended hash (ended, until
    its retention) or its archive's summary; one no longer kept is left out."""
    keys = store.keys
    commands: list[tuple[Any, ...]] = []
    for wf in ids:
        commands += [
            ("HMGET", keys.idx(wf), schema.STATUS, schema.SUBMITTED, schema.LENGTH),
            ("HGET", keys.ended(shard_of(wf)), wf),
            ("GETRANGE", keys.archive(wf), 0, SUMMARY.size - 1),
        ]
    replies = (yield commands) if commands else []
    out: list[WorkflowSummary] = []
    for i, wf in enumerate(ids):
        (state, sub, n), ended, head = (checked(r) for r in replies[3 * i : 3 * i + 3])
        summary: ArchiveSummary | None = None
        if ended:
            status, submitted, ended_ms, events = ended.decode().split(" ")
            summary = ArchiveSummary(status, int(submitted), int(ended_ms), int(events))
        elif head:
            summary = archive_summary(head) or (yield from _summarize(store, wf))
        elif sub is not None:
            out.append(
                WorkflowSummary(
                    workflow_id=wf,
                    status=(state or RUNNING.encode()).decode(),
                    submitted_ms=int(sub.split(b"-")[0]),
                    ended_ms=None,
                    events=int(n or 0),
                )
            )
        if summary is not None:
            out.append(_line(wf, summary))
    return out


def _line(workflow_id: str, summary: ArchiveSummary) -> WorkflowSummary:
    """An ended workflow's line, from its summary."""
    return WorkflowSummary(
        workflow_id=workflow_id,
        status=summary.status,
        submitted_ms=summary.submitted_ms,
        ended_ms=summary.ended_ms,
        events=summary.events,
    )


def _indexed(store: Store, shard: int) -> Plan[None]:
    """Index, once, the workflows a shard kept from before its submitted index existed
    (an older version submitted them): from a scan of its running and ended ones."""
    done = store.keys.submitted_indexed(shard)
    if (yield from one(("EXISTS", done))) == 1:
        return
    kept = [*(yield from _running(store, shard)), *(yield from _ended(store, shard))]
    for start in range(0, len(kept), _BATCH):
        pairs = [v for s in kept[start : start + _BATCH] for v in (s.submitted_ms, s.workflow_id)]
        yield from one(("ZADD", store.keys.submitted(shard), *pairs))
    yield from one(("SET", done, "1"))


def _scan(command: str, key: str) -> Plan[list[bytes]]:
    """Every item a SSCAN, HSCAN or ZSCAN of ``key`` gives (flat, as the reply has them)."""
    items: list[bytes] = []
    cursor: Any = b"0"
    while True:
        cursor, chunk = yield from one((command, key, cursor, "COUNT", _BATCH))
        items += chunk
        if int(cursor) == 0:
            return items


def _running(store: Store, shard: int) -> Plan[list[WorkflowSummary]]:
    ids = list(
        dict.fromkeys(raw.decode() for raw in (yield from _scan("SSCAN", store.keys.active(shard))))
    )
    out: list[WorkflowSummary] = []
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        rows = yield [
            ("HMGET", store.keys.idx(wf), schema.SUBMITTED, schema.LENGTH) for wf in chunk
        ]
        for wf, row in zip(chunk, rows, strict=True):
            sub, n = checked(row)
            if sub is None:
                continue  # ended (or its index is being rebuilt) since the scan
            out.append(
                WorkflowSummary(
                    workflow_id=wf,
                    status=RUNNING,
                    submitted_ms=int(sub.split(b"-")[0]),
                    ended_ms=None,
                    events=int(n or 0),
                )
            )
    return out


def _ended(store: Store, shard: int) -> Plan[list[WorkflowSummary]]:
    """Ended workflows: those not yet archived from the ended hash, then the archived
    ones (the expiry set) from their archives' summaries."""
    found: dict[str, ArchiveSummary] = {}
    pairs = yield from _scan("HSCAN", store.keys.ended(shard))
    for raw_id, raw in zip(pairs[::2], pairs[1::2], strict=True):
        status, submitted, ended, events = raw.decode().split(" ")
        found[raw_id.decode()] = ArchiveSummary(status, int(submitted), int(ended), int(events))
    members = (yield from _scan("ZSCAN", store.keys.expiry(shard)))[::2]
    ids = list(dict.fromkeys(raw.decode().partition(" ")[0] for raw in members))
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        heads = yield [("GETRANGE", store.keys.archive(wf), 0, SUMMARY.size - 1) for wf in chunk]
        for wf, head in zip(chunk, heads, strict=True):
            if not checked(head):
                continue  # expired since the scan
            summary = archive_summary(head) or (yield from _summarize(store, wf))
            if summary is not None:
                found[wf] = summary
    return [_line(wf, s) for wf, s in found.items()]


def _summarize(store: Store, workflow_id: str) -> Plan[ArchiveSummary | None]:
    """The summary of an archive written without one, from its events."""
    try:
        raw, _ = yield from raw_plan(store.keys, workflow_id)
    except WorkflowNotFoundError:
        return None  # expired since the scan
    entries = [to_entry(item) for item in raw]
    status = fold_all(entries).status
    for entry in entries:
        if isinstance(entry.event, TERMINAL):
            return ArchiveSummary(status, entries[0].time_ms, entry.time_ms, entry.seq)
    return None
