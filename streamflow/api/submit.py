"""Submitting a workflow: what is checked before anything is written (the id fits the
App, the canvas fits its history budget), then the writes, and what a retried or
conflicting submit finds."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from streamflow.logs import get_logger
from streamflow.model import schema
from streamflow.model.decide import decide
from streamflow.model.definition import Definition, TaskNode
from streamflow.model.errors import (
    DefinitionError,
    WorkflowIdConflict,
    WorkflowNotFoundError,
)
from streamflow.model.events import Entry, WorkflowSubmitted
from streamflow.model.messages import encode_wake, shard_of
from streamflow.model.options import HistoryBudget, to_ms
from streamflow.model.state import fold_all
from streamflow.runtime.projector import APPLY_CHUNK, Projector, Trigger
from streamflow.store import scripts
from streamflow.store.connection import Store
from streamflow.store.decisions import slots_of
from streamflow.store.log import read_history
from streamflow.store.scripts import Call, Reply, reply_code

log = get_logger(__name__)


EVENTS_PER_TASK = 3
"""What each task logs at least: enqueued, started, and its outcome."""


def check_workflow_id(workflow_id: str, shards: int) -> None:
    """
    Raises:
        ValueError: ``workflow_id`` is malformed, or on a shard the App has not got (no
            worker of it would ever run the workflow).
    """
    shard = shard_of(workflow_id)
    if shard >= shards:
        raise ValueError(
            f"workflow id {workflow_id!r} is on shard {shard}, but this App has "
            f"{shards} shard{'s' if shards > 1 else ''} (0 to {shards - 1}): use "
            "app.new_workflow_id()"
        )


def check_budget(budget: HistoryBudget | None, definition: Definition, submitted: bytes) -> None:
    """Refuse a canvas that could only fail on its history budget: one whose tasks log
    more events, or whose submission alone is larger, than the budget allows.

    Raises:
        DefinitionError: naming the size and the limit.
    """
    if budget is None:
        return
    tasks = definition.task_count
    events = 2 + EVENTS_PER_TASK * tasks  # with the submission and the end
    if events > budget.max_events:
        raise DefinitionError(
            f"a canvas of {tasks:,} tasks logs at least {events:,} events, more than its "
            f"history budget allows (HistoryBudget.max_events={budget.max_events:,}): "
            "split it into several workflows, or raise the budget"
        )
    if len(submitted) > budget.max_bytes:
        raise DefinitionError(
            f"a canvas whose arguments encode to {len(submitted):,} bytes is larger than its "
            f"history budget allows (HistoryBudget.max_bytes={budget.max_bytes:,}): pass "
            "references to large data (a key, a path) instead"
        )


def submission_options(
    definition: Definition,
    retention: float | None,
    default_retention_ms: int,
    budget: HistoryBudget | None,
) -> dict[str, Any]:
    """What a submission records of its options: its retention (``retention``, else the
    longest ``result_ttl`` of its actors, else the App's) and the history budget."""
    if retention is not None:
        retention_ms = to_ms(retention, "retention")
    else:
        ttls = [
            n.options.result_ttl_ms
            for n in definition.nodes
            if isinstance(n, TaskNode) and n.options.result_ttl_ms is not None
        ]
        retention_ms = max(ttls) if ttls else default_retention_ms
    options: dict[str, Any] = {"retention_ms": retention_ms}
    if budget is not None:
        options["history"] = budget.option()
    return options


def decided(definition: Definition, submitted: WorkflowSubmitted) -> list[Any]:
    """What a submission decides at once (its roots' enqueues)."""
    entry = Entry(seq=1, stream_id="0-0", event=submitted)
    return decide(definition, fold_all([entry]), entry)


@dataclasses.dataclass(frozen=True, slots=True)
class Submission:
    """A workflow compiled and checked, ready to write."""

    workflow_id: str
    definition: Definition
    submitted: WorkflowSubmitted
    payload: bytes
    """``submitted``, encoded."""
    decisions: list[Any]
    """What the submission decides (the roots' enqueues)."""
    lone: bytes | None = None
    """A lone task's encoded arguments (``model.lone``), which its message carries."""

    @property
    def shard(self) -> int:
        return shard_of(self.workflow_id)


def _call(store: Store, projector: Projector, s: Submission, definition_bytes: bytes) -> Call:
    first, rest = s.decisions[:APPLY_CHUNK], s.decisions[APPLY_CHUNK:]
    return scripts.submit(
        wf=store.keys.workflow(s.workflow_id),
        definition=store.keys.definition(s.shard, s.definition.hash),
        definitions=store.keys.definitions(s.shard),
        submitted=s.payload,
        def_hash=s.definition.hash,
        wake=encode_wake(s.workflow_id, schema.SUBMITTED) if rest else b"",
        grace_ms=projector.recovery_grace_ms,
        retention_ms=s.submitted.options["retention_ms"],
        definition_bytes=definition_bytes,
        args=s.submitted.args,
        # Due times relative to the submission: the script adds its own clock.
        decided=slots_of(store.keys, s.workflow_id, s.definition, first, {}, lone=s.lone),
    )


def write_workflow(store: Store, projector: Projector, s: Submission) -> None:
    """Write a new workflow: its submission and its roots' decisions (one script for the
    first ``APPLY_CHUNK``, the projector for the rest). A retry of the same submission
    writes nothing.

    Raises:
        WorkflowIdConflict: another workflow has the id.
    """
    # The definition goes along the first time this process submits it to the shard
    # (stored with the workflow, or not at all if the submit is refused).
    known = store.definitions.stored(s.shard, s.definition.hash)
    raw = store.scripts.run(_call(store, projector, s, b"" if known else s.definition.to_bytes))
    if reply_code(raw) is Reply.NODEF:
        if not int(raw[1]):
            # The server lost it (a restart without its data, a FLUSHALL, a failover to
            # an empty replica): say so loudly. (Else its last user was removed after
            # its retention: nothing to say.)
            store.lost("definition", definition_hash=s.definition.hash)
        raw = store.scripts.run(_call(store, projector, s, s.definition.to_bytes))
    _written(store, projector, s, raw)


def write_many(store: Store, projector: Projector, submissions: Sequence[Submission]) -> None:
    """``write_workflow`` of each, their scripts in one round trip; one the batch could
    not write (its definition removed meanwhile, its id taken) goes the single way."""
    calls: list[Call] = []
    sent: set[tuple[int, str]] = set()
    for s in submissions:
        where = (s.shard, s.definition.hash)
        known = where in sent or store.definitions.stored(*where)
        sent.add(where)
        calls.append(_call(store, projector, s, b"" if known else s.definition.to_bytes))
    for s, raw in zip(submissions, store.scripts.batch(calls), strict=True):
        if isinstance(raw, Exception) or reply_code(raw) is not Reply.OK:
            write_workflow(store, projector, s)
        else:
            _written(store, projector, s, raw)


def _written(store: Store, projector: Projector, s: Submission, raw: Any) -> None:
    """After the submit script: the roots past the first ``APPLY_CHUNK`` projected."""
    store.definitions.remember(s.shard, s.definition)
    if reply_code(raw) is Reply.EXISTS:
        _check_same(store, s.workflow_id, s.submitted)
        log.info("workflow_already_submitted", workflow_id=s.workflow_id)
        return
    if len(s.decisions) > APPLY_CHUNK:
        # The remaining roots go in chunks; the wake-up the script scheduled finishes
        # the job if this process dies before the last one.
        submitted_ms = int(raw[3].decode().split("-")[0])
        cause = Entry(seq=1, stream_id=f"{submitted_ms}-0", event=s.submitted)
        wake = encode_wake(s.workflow_id, schema.SUBMITTED)
        projector.project(s.workflow_id, cause, Trigger(queue_key="", msg_id="", wake_member=wake))


def _check_same(store: Store, workflow_id: str, submitted: WorkflowSubmitted) -> None:
    """A retried submit must be of the same canvas and arguments as the workflow
    already under its id (one removed after its retention cannot be compared).

    Raises:
        WorkflowIdConflict: it is another.
    """
    try:
        first = read_history(store.client, store.keys, workflow_id)[0].event
    except WorkflowNotFoundError:
        return
    if not isinstance(first, WorkflowSubmitted) or (first.def_hash, first.args) != (
        submitted.def_hash,
        submitted.args,
    ):
        raise WorkflowIdConflict(workflow_id)
