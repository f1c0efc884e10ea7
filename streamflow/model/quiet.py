"""Quiet outcomes: a success from which nothing can follow, acknowledged by the outcome
script itself with no projection.

A group member's success that leaves its barrier short of its sources decides nothing
(its decrement is recorded with it); so does a sink's success that leaves the workflow's
end short of its sinks. The outcome script counts those (``COUNT`` fields of the index)
and, when the count stays short and the log is below the next length at which the
history budget decides something, acknowledges the message itself. Callbacks, failures
and successes with an ``on_success`` callback always go through a projection.
"""

from __future__ import annotations

from typing import NamedTuple

from streamflow.model import schema
from streamflow.model.definition import NONE, Definition, TaskNode
from streamflow.model.state import State

NEVER = 2**62
"""A log length the budget never reaches (no budget)."""


class QuietCheck(NamedTuple):
    """What the outcome script is told to decide whether an outcome is quiet."""

    reaches: int
    """The count at which something follows (0: no check, the outcome is projected)."""
    counter: int | str
    """What the outcome adds one to: its barrier's id, ``END_COUNT`` for a sink done, or
    '' (nothing)."""
    below: int
    """Quiet only while the log is shorter than this (the history budget's next step)."""


def counter_of(task: TaskNode, *, done: bool) -> int | str:
    """What an outcome of ``task`` adds one to (``done``: it counts toward what follows,
    a success or a tolerated final failure): its barrier (counted with its decrement,
    once), ``END_COUNT`` for a sink of the workflow, or '' (nothing)."""
    if done and task.succ != NONE:
        return task.succ
    if done and not task.finalizer:
        return schema.END_COUNT
    return ""


def quiet_check(
    definition: Definition, task: TaskNode, state: State, *, ok: bool, done: bool
) -> QuietCheck:
    """The check for an outcome of ``task`` (``ok``: a success; ``done``: see
    ``counter_of``), given the fold its recorder has (for the budget, known once the
    submission is folded)."""
    counter = counter_of(task, done=done)
    if not ok or task.finalizer or task.on_success != NONE or counter == "":
        return QuietCheck(0, counter, 0)
    if not state.def_hash:
        return QuietCheck(0, counter, 0)
    budget = state.options.get("history")
    # The event count at which the budget decides something next: its warning's, then
    # (once the warning is in the log) its limit's.
    warned = schema.HISTORY_WARNING in state.keys
    below = (budget[2] if warned else budget[0]) if budget else NEVER
    if task.succ != NONE:
        reaches = len(definition.barrier(task.succ).sources)
    else:
        reaches = len(definition.sinks)
    return QuietCheck(reaches, counter, below)


def is_quiet(check: QuietCheck, count: int, length: int) -> bool:
    """What the outcome script decides: the outcome's count (after it) is short of what
    it must reach, and the log (after it) below the budget's next step."""
    return bool(check.reaches) and count < check.reaches and length < check.below
