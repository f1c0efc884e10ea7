"""Decisions as the submit and apply scripts take them: 8 ARGV slots each (see
``append_decisions`` in ``lua/_lib.lua``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from streamflow.model import schema
from streamflow.model.definition import Definition
from streamflow.model.events import (
    TERMINAL,
    BarrierDecremented,
    BarrierReleased,
    Event,
    HistoryWarning,
    SignalReceived,
    TaskEnqueued,
    TaskSucceeded,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowResumed,
    encode_event,
)
from streamflow.model.messages import encode_task_message, shard_of
from streamflow.model.quiet import counter_of
from streamflow.model.signals import message_delay
from streamflow.store.keys import Keys


class Decisions(NamedTuple):
    """Decisions as 8 ARGV slots each, and the queue keys they name (each followed by
    its delayed set; a slot names its queue by its 1-based position among them)."""

    total: int
    queue_keys: list[str]
    slots: list[Any]


_TERMINAL_STATUS: dict[type[Event], str] = {
    WorkflowCompleted: schema.COMPLETED,
    WorkflowFailed: schema.FAILED,
    WorkflowCancelled: schema.CANCELLED,
}


def slots_of(
    keys: Keys,
    workflow_id: str,
    definition: Definition,
    events: Sequence[Event],
    time_of: Mapping[int, int],
    *,
    lone: bytes | None = None,
) -> Decisions:
    """The slots of ``events`` (see ``append_decisions`` in ``lua/_lib.lua``).

    ``time_of`` maps a cause's sequence number to its time; a cause missing from it makes
    due times relative (the script adds its own base). ``lone``: the workflow is a lone
    task (``model.lone``) with these encoded arguments, which its first message carries.

    Raises:
        TypeError: an event that is not a decision.
    """
    shard = shard_of(workflow_id)
    positions: dict[str, int] = {}
    queue_keys: list[str] = []
    slots: list[Any] = []
    # Signal nodes that succeed in these very decisions need no timeout message.
    taken = {e.idempotency_key() for e in events if isinstance(e, TaskSucceeded)}
    for event in events:
        key = event.idempotency_key()
        payload = encode_event(event)
        if isinstance(event, TaskEnqueued):
            task = definition.task(event.node)
            target = keys.queue(shard, task.options.queue)
            if target not in positions:
                queue_keys += [target, keys.delayed(shard, task.options.queue)]
                positions[target] = len(queue_keys) - 1
            # A signal node's message is its timeout (none when it takes its signal here).
            delay_ms = message_delay(task, event.delay_ms)
            message = b""
            if delay_ms is not None and schema.outcome_key(event.node, event.attempt) not in taken:
                message = encode_task_message(
                    workflow_id,
                    event.node,
                    event.attempt,
                    definition.hash,
                    lone if event.attempt == 1 else None,
                )
            due = delay_ms + time_of.get(event.cause, 0) if delay_ms else 0
            kind = schema.Decision.ENQUEUE_FINALIZER if task.finalizer else schema.Decision.ENQUEUE
            slots += [
                kind,
                key,
                payload,
                event.node,
                event.attempt,
                positions[target],
                message,
                due,
            ]
        elif isinstance(event, TaskSucceeded):
            # A signal node's success (see decide): its result field, and its count.
            counter = counter_of(definition.task(event.node), done=True)
            counter = "" if isinstance(counter, int) else counter  # the decrement counts
            slots += [schema.Decision.OUTCOME, key, payload, event.node, "", 0, counter, 0]
        elif isinstance(event, SignalReceived):
            slots += [schema.Decision.SIGNAL, key, payload, "", "", 0, "", 0]
        elif isinstance(event, WorkflowResumed):
            slots += [schema.Decision.RESUME, key, payload, "", "", 0, "", 0]
        elif isinstance(event, BarrierDecremented):
            slots += [schema.Decision.DECREMENT, key, payload, event.barrier, "", 0, "", 0]
        elif isinstance(event, BarrierReleased):
            slots += [schema.Decision.RELEASE, key, payload, "", "", 0, "", 0]
        elif isinstance(event, HistoryWarning):
            slots += [schema.Decision.WARN, key, payload, "", "", 0, "", 0]
        elif isinstance(event, TERMINAL):
            status = _TERMINAL_STATUS[type(event)]
            slots += [schema.Decision.TERMINAL, key, payload, status, "", 0, "", 0]
        else:
            raise TypeError(f"{type(event).__name__} is not a decision")
    return Decisions(len(events), queue_keys, slots)
