"""Listing workflows: running ones from each shard's active set, ended ones (until their
retention) from each shard's ended hash and, once archived, from the summary each archive
starts with. Reads derived keys only, never a log."""

from __future__ import annotations

import dataclasses
from typing import Any

from streamflow.model import schema
from streamflow.model.archive import SUMMARY, ArchiveSummary, archive_summary
from streamflow.model.errors import WorkflowNotFoundError
from streamflow.model.events import TERMINAL
from streamflow.model.schema import RUNNING, TERMINAL_STATUSES
from streamflow.model.state import fold_all
from streamflow.store.connection import Store
from streamflow.store.log import read_history

STATUSES = (RUNNING, *sorted(TERMINAL_STATUSES))
_BATCH = 500


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
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)} (got {status!r})")
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit!r})")
    found: list[WorkflowSummary] = []
    for shard in range(store.shards):
        if status in (None, RUNNING):
            found += _running(store, shard)
        if status != RUNNING:
            found += [s for s in _ended(store, shard) if status in (None, s.status)]
    found.sort(key=lambda s: (s.submitted_ms, s.workflow_id), reverse=True)
    return found[:limit]


def _running(store: Store, shard: int) -> list[WorkflowSummary]:
    ids = [raw.decode() for raw in store.client.sscan_iter(store.keys.active(shard), count=_BATCH)]
    out: list[WorkflowSummary] = []
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        pipe = store.client.pipeline(transaction=False)
        for wf in chunk:
            pipe.hmget(store.keys.idx(wf), [schema.SUBMITTED, schema.LENGTH])
        rows: list[Any] = pipe.execute()
        for wf, (sub, n) in zip(chunk, rows, strict=True):
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


def _ended(store: Store, shard: int) -> list[WorkflowSummary]:
    """Ended workflows: those not yet archived from the ended hash, then the archived
    ones (the expiry set) from their archives' summaries."""
    found: dict[str, ArchiveSummary] = {}
    for raw_id, raw in store.client.hscan_iter(store.keys.ended(shard), count=_BATCH):
        status, submitted, ended, events = raw.decode().split(" ")
        found[raw_id.decode()] = ArchiveSummary(status, int(submitted), int(ended), int(events))
    ids = [
        raw.decode().partition(" ")[0]
        for raw, _ in store.client.zscan_iter(store.keys.expiry(shard), count=_BATCH)
    ]
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        pipe = store.client.pipeline(transaction=False)
        for wf in chunk:
            pipe.getrange(store.keys.archive(wf), 0, SUMMARY.size - 1)
        heads: list[Any] = pipe.execute()
        for wf, head in zip(chunk, heads, strict=True):
            if not head:
                continue  # expired since the scan
            summary = archive_summary(head) or _summarize(store, wf)
            if summary is not None:
                found[wf] = summary
    return [
        WorkflowSummary(
            workflow_id=wf,
            status=s.status,
            submitted_ms=s.submitted_ms,
            ended_ms=s.ended_ms,
            events=s.events,
        )
        for wf, s in found.items()
    ]


def _summarize(store: Store, workflow_id: str) -> ArchiveSummary | None:
    """The summary of an archive written without one, from its events."""
    try:
        entries = read_history(store.client, store.keys, workflow_id)
    except WorkflowNotFoundError:
        return None  # expired since the scan
    status = fold_all(entries).status
    for entry in entries:
        if isinstance(entry.event, TERMINAL):
            return ArchiveSummary(status, entries[0].time_ms, entry.time_ms, entry.seq)
    return None
