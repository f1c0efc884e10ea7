"""Submitting a workflow: what is checked before anything is written (the id fits the
App, the canvas fits its history budget), then the writes, and what a retried or
conflicting submit finds."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from streamflow.api.reads import history_plan
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
from streamflow.runtime.projector import Projector, Trigger, split_first
from streamflow.store import scripts
from streamflow.store.connection import Store
from streamflow.store.decisions import slots_of
from streamflow.store.plan import Plan, checked, run
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


def _call(store: Store, s: Submission, grace_ms: int, definition_bytes: bytes) -> Call:
    first, rest = split_first(s.decisions)
    return scripts.submit(
        wf=store.keys.workflow(s.workflow_id),
        definition=store.keys.definition(s.shard, s.definition.hash),
        definitions=store.keys.definitions(s.shard),
        submitted=s.payload,
        def_hash=s.definition.hash,
        wake=encode_wake(s.workflow_id, schema.SUBMITTED) if rest else b"",
        grace_ms=grace_ms,
        retention_ms=s.submitted.options["retention_ms"],
        definition_bytes=definition_bytes,
        args=s.submitted.args,
        # Due times relative to the submission: the script adds its own clock.
        decided=slots_of(store.keys, s.workflow_id, s.definition, first, {}, lone=s.lone),
    )


def submit_plan(store: Store, s: Submission, grace_ms: int) -> Plan[Any]:
    """Write a new workflow: its submission and its first ``APPLY_CHUNK`` roots'
    decisions; a wake-up due after ``grace_ms`` has the rest projected (see
    ``write_workflow``). A retry of the same submission writes nothing. Returns the
    script's reply.

    Raises:
        WorkflowIdConflict: another workflow has the id.
    """
    if not store.shards_checked:
        yield from store.shards_plan()
    # The definition goes along the first time this process submits it to the shard
    # (stored with the workflow, or not at all if the submit is refused).
    known = store.definitions.stored(s.shard, s.definition.hash)
    (raw,) = yield [_call(store, s, grace_ms, b"" if known else s.definition.to_bytes)]
    if reply_code(checked(raw)) is Reply.NODEF:
        if not int(raw[1]):
            # The server lost it (a restart without its data, a FLUSHALL, a failover to
            # an empty replica): say so loudly. (Else its last user was removed after
            # its retention: nothing to say.)
            store.lost("definition", definition_hash=s.definition.hash)
        (raw,) = yield [_call(store, s, grace_ms, s.definition.to_bytes)]
    return (yield from _written(store, s, checked(raw)))


def submit_many_plan(
    store: Store, submissions: Sequence[Submission], grace_ms: int
) -> Plan[list[Any]]:
    """``submit_plan`` of each, their scripts in one round trip; one the batch could not
    write (its definition removed meanwhile, its id taken) goes the single way."""
    if not store.shards_checked:
        yield from store.shards_plan()
    calls: list[Call] = []
    sent: set[tuple[int, str]] = set()
    for s in submissions:
        where = (s.shard, s.definition.hash)
        known = where in sent or store.definitions.stored(*where)
        sent.add(where)
        calls.append(_call(store, s, grace_ms, b"" if known else s.definition.to_bytes))
    replies = yield calls
    out: list[Any] = []
    for s, raw in zip(submissions, replies, strict=True):
        if isinstance(raw, Exception) or reply_code(raw) is not Reply.OK:
            out.append((yield from submit_plan(store, s, grace_ms)))
        else:
            out.append((yield from _written(store, s, raw)))
    return out


def write_workflow(store: Store, projector: Projector, s: Submission) -> None:
    """``submit_plan`` on this thread; the roots past the first ``APPLY_CHUNK`` are
    projected at once (the wake-up the script scheduled finishes the job if this
    process dies before the last one)."""
    raw = run(submit_plan(store, s, projector.recovery_grace_ms), store.execute)
    _project_rest(projector, s, raw)


def write_many(store: Store, projector: Projector, submissions: Sequence[Submission]) -> None:
    """``write_workflow`` of each, their scripts in one round trip."""
    plan = submit_many_plan(store, submissions, projector.recovery_grace_ms)
    for s, raw in zip(submissions, run(plan, store.execute), strict=True):
        _project_rest(projector, s, raw)


def _project_rest(projector: Projector, s: Submission, raw: Any) -> None:
    if split_first(s.decisions)[1] and reply_code(raw) is Reply.OK:
        submitted_ms = int(raw[3].decode().split("-")[0])
        cause = Entry(seq=1, stream_id=f"{submitted_ms}-0", event=s.submitted)
        wake = encode_wake(s.workflow_id, schema.SUBMITTED)
        projector.project(s.workflow_id, cause, Trigger(queue_key="", msg_id="", wake_member=wake))


def _written(store: Store, s: Submission, raw: Any) -> Plan[Any]:
    """After the submit script: a retried submit must be of the same canvas and
    arguments as the workflow already under its id (one removed after its retention
    cannot be compared).

    Raises:
        WorkflowIdConflict: it is another.
    """
    store.definitions.remember(s.shard, s.definition)
    if reply_code(raw) is Reply.EXISTS:
        try:
            first = (yield from history_plan(store, s.workflow_id))[0].event
        except WorkflowNotFoundError:
            return raw
        if not isinstance(first, WorkflowSubmitted) or (first.def_hash, first.args) != (
            s.submitted.def_hash,
            s.submitted.args,
        ):
            raise WorkflowIdConflict(s.workflow_id)
        log.info("workflow_already_submitted", workflow_id=s.workflow_id)
    return raw
