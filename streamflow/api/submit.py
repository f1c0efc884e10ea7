"""Submitting a workflow: what is checked before anything is written (the id fits the
App, the canvas fits its history budget), then the writes, and what a retried or
conflicting submit finds."""

from __future__ import annotations

from typing import Any

from streamflow.logs import get_logger
from streamflow.model import schema
from streamflow.model.definition import Definition
from streamflow.model.errors import (
    DefinitionError,
    WorkflowIdConflict,
    WorkflowNotFoundError,
)
from streamflow.model.events import Entry, WorkflowSubmitted
from streamflow.model.messages import encode_wake, shard_of
from streamflow.model.options import HistoryBudget
from streamflow.runtime.projector import APPLY_CHUNK, Projector, Trigger
from streamflow.store import scripts
from streamflow.store.connection import Store
from streamflow.store.log import read_history
from streamflow.store.scripts import Reply, reply_code

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


def write_workflow(
    store: Store,
    projector: Projector,
    workflow_id: str,
    definition: Definition,
    submitted: WorkflowSubmitted,
    payload: bytes,
    decisions: list[Any],
) -> None:
    """Write a new workflow: its submission and its roots' decisions (one script for the
    first ``APPLY_CHUNK``, the projector for the rest). A retry of the same submission
    writes nothing.

    Raises:
        WorkflowIdConflict: another workflow has the id.
    """
    first, rest = decisions[:APPLY_CHUNK], decisions[APPLY_CHUNK:]
    wake = encode_wake(workflow_id, schema.SUBMITTED) if rest else b""
    shard = shard_of(workflow_id)

    def call(definition_bytes: bytes) -> scripts.Call:
        return scripts.submit(
            wf=store.keys.workflow(workflow_id),
            definition=store.keys.definition(shard, definition.hash),
            definitions=store.keys.definitions(shard),
            submitted=payload,
            def_hash=definition.hash,
            wake=wake,
            grace_ms=projector.recovery_grace_ms,
            retention_ms=submitted.options["retention_ms"],
            definition_bytes=definition_bytes,
            args=submitted.args,
            # Due times relative to the submission: the script adds its own clock.
            decided=scripts.decisions(store.keys, workflow_id, definition, first, {}),
        )

    # The definition goes along the first time this process submits it to the shard
    # (stored with the workflow, or not at all if the submit is refused).
    known = store.definitions.stored(shard, definition.hash)
    raw = store.scripts.run(call(b"" if known else definition.to_bytes))
    if reply_code(raw) is Reply.NODEF:
        if not int(raw[1]):
            # The server lost it (a restart without its data, a FLUSHALL, a failover to
            # an empty replica): say so loudly. (Else its last user was removed after
            # its retention: nothing to say.)
            store.lost("definition", definition_hash=definition.hash)
        raw = store.scripts.run(call(definition.to_bytes))
    store.definitions.remember(shard, definition)
    if reply_code(raw) is Reply.EXISTS:
        _check_same(store, workflow_id, submitted)
        log.info("workflow_already_submitted", workflow_id=workflow_id)
        return
    if rest:
        # The remaining roots go in chunks; the wake-up scheduled above finishes the
        # job if this process dies before the last one.
        submitted_ms = int(raw[3].decode().split("-")[0])
        cause = Entry(seq=1, stream_id=f"{submitted_ms}-0", event=submitted)
        projector.project(
            workflow_id,
            cause,
            Trigger(queue_key="", msg_id="", wake_member=wake),
        )


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
