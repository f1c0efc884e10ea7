"""Signals: a fact from outside a workflow, recorded once (``SignalReceived``), that the
node waiting for it (``Signal(name)``) takes as its result.

Sending is one apply call from a fold of the whole log, as a plan both faces of the App
carry out: the SignalReceived and what it decides (the waiting node's success, its
decrement, what that releases) go in together. The apply script serialises it with
every other decision (a signal counts as one), so a signal and the enqueue of its node
never miss each other: whichever comes second sees the first.

A signal node never runs: its message, sent only when it has a timeout and due when
the wait ends, runs ``SignalWaiter``, which fails the attempt with ``SignalTimeout``;
the outcome script refuses that failure once the signal is in the log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NoReturn

from streamflow.logs import get_logger
from streamflow.model import codec
from streamflow.model.decide import decide, finished
from streamflow.model.definition import Definition, TaskNode
from streamflow.model.errors import (
    EncodeError,
    ScriptError,
    SignalError,
    WorkflowNotFoundError,
)
from streamflow.model.events import Entry, Event, SignalReceived, to_entry
from streamflow.model.messages import encode_wake
from streamflow.model.options import ActorOptions
from streamflow.model.schema import RUNNING, signal_key
from streamflow.model.signals import timed_out
from streamflow.model.state import fold, fold_all
from streamflow.runtime.projector import MAX_ROUNDS, Applied, Projector, Trigger, chunked
from streamflow.store.log import parse_raw, raw_plan
from streamflow.store.plan import Plan, checked, clock_ms, run
from streamflow.store.scripts import Reply, reply_code

log = get_logger(__name__)

SIGNAL_ROUNDS = 4 * MAX_ROUNDS
"""Rounds a signal may take to land: each is cheap (the new entries, and the apply)."""
MOVED = -4
"""The apply script's CONFLICT code for a signal whose log grew since its fold."""
MAX_PAYLOAD_BYTES = 64 * 1024
"""The largest encoded payload a signal may carry (it is kept in the log twice: the
signal, and its node's result)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SignalWaiter:
    """What a worker runs for a signal node's message: its timeout, a failure."""

    task: TaskNode
    is_async: bool = False
    throws: tuple[type[BaseException], ...] = ()
    retry_when: Callable[[int, BaseException], bool] | None = None

    @property
    def name(self) -> str:
        return self.task.actor

    @property
    def options(self) -> ActorOptions:
        return self.task.options

    def fn(self, *_: Any, **__: Any) -> NoReturn:
        raise timed_out(self.task)


def waiter(task: TaskNode) -> SignalWaiter | None:
    """The built-in runnable of a signal node, or None for any other task."""
    return SignalWaiter(task) if task.signal is not None else None


def encoded_payload(name: str, payload: Any) -> bytes:
    """``payload`` encoded, checked against ``MAX_PAYLOAD_BYTES``.

    Raises:
        SignalError: the name is empty, or the payload cannot be encoded or is too large.
    """
    if not isinstance(name, str) or not name:
        raise SignalError(f"a signal's name is a non-empty string (got {name!r})")
    try:
        data = codec.encode_checked(payload, what=f"payload of signal {name!r}")
    except EncodeError as exc:
        raise SignalError(str(exc)) from exc
    if len(data) > MAX_PAYLOAD_BYTES:
        raise SignalError(
            f"the payload of signal {name!r} is {len(data)} bytes encoded, over the limit "
            f"of {MAX_PAYLOAD_BYTES}: keep it elsewhere and send a reference"
        )
    return data


def signal_plan(
    projector: Projector, workflow_id: str, name: str, payload: Any, sender: str
) -> Plan[Applied | None]:
    """Record SignalReceived ``name`` once, with what it decides; what it applied (for
    ``Projector.settle``), or None if the workflow had received that signal already.

    The signal's decisions name it by its sequence number, the one after the fold they
    were made from. Events that are not decisions may land in between (a task's start
    or outcome): the decisions stand and are numbered again after the log's last event
    (``_apply``). A decision landing in between means deciding again, from the fold
    and what is new (read in one round trip).

    Raises:
        SignalError: the workflow is unknown, waits for no signal ``name``, or has
            ended without receiving it.
        ScriptError: it did not settle (endless conflicts).
    """
    encoded_payload(name, payload)
    keys = projector.store.keys
    log_key = keys.workflow(workflow_id).log
    entries: list[Entry] = []  # the log as last read (empty: read it whole)
    for _ in range(SIGNAL_ROUNDS):
        if entries:
            state = fold_all(entries)  # before the read: the window to the apply is short
            tail, clock = yield [("XRANGE", log_key, f"({entries[-1].stream_id}", "+"), ("TIME",)]
            new = [to_entry(item) for item in parse_raw(checked(tail))]
            if not new:  # no longer a live log that grew (archived, say): read it all
                entries = []
                continue
            for entry in new:
                fold(state, entry)
            entries += new
        else:
            try:
                raw, _ = yield from raw_plan(keys, workflow_id)  # an archive too: a duplicate?
            except WorkflowNotFoundError:
                raise SignalError(f"no workflow {workflow_id!r} (unknown, or expired)") from None
            (clock,) = yield [("TIME",)]
            entries = [to_entry(item) for item in raw]
            state = fold_all(entries)
        definition = yield from projector.store.definitions.get_plan(state.def_hash, workflow_id)
        if name not in definition.signals:
            waits = ", ".join(repr(s) for s in definition.signals) or "none"
            raise SignalError(
                f"workflow {workflow_id} waits for no signal {name!r} (its signals: {waits})"
            )
        if signal_key(name) in state.keys:
            return None
        if state.status != RUNNING:
            raise SignalError(
                f"workflow {workflow_id} has ended ({state.status}) without signal {name!r}"
            )
        folded, expected = (state.n, state.last_id), state.last_decision
        received = SignalReceived(name=name, payload=payload, sender=sender)
        entry = Entry(seq=state.n + 1, stream_id=f"{clock_ms(clock)}-0", event=received)
        fold(state, entry)
        decisions: list[Event] = [received, *decide(definition, state, entry)]
        done = finished(definition, state, decisions)
        chunks = chunked(decisions)
        wake = Trigger("", "", encode_wake(workflow_id, signal_key(name)))
        if len(chunks) > 1:  # if this stops between chunks, recovery decides the rest
            due = clock_ms(clock) + projector.recovery_grace_ms
            yield [("ZADD", keys.workflow(workflow_id).wake_due, due, wake.wake_member)]
        applied = yield from _apply(
            projector, workflow_id, definition, chunks, wake, entry, expected, folded, done
        )
        if applied is None:
            continue  # a decision came first, or it ended: read what is new
        decisions, archived, ended = applied
        log.info("signal_received", workflow_id=workflow_id, signal=name)
        return Applied(decisions, archived, ended, done)
    raise ScriptError(f"signalling {workflow_id} did not settle in {SIGNAL_ROUNDS} rounds")


def _apply(
    projector: Projector,
    workflow_id: str,
    definition: Definition,
    chunks: list[list[Event]],
    wake: Trigger,
    entry: Entry,
    expected: int,
    folded: tuple[int, str],
    done: bool,
) -> Plan[tuple[list[Event], bool, bool] | None]:
    """Apply the signal's decisions chunk by chunk (the signal in the first); the
    decisions as applied, and whether the workflow was archived and ended; or None if
    the first chunk was refused.

    Events that are not decisions may come between the fold and the apply (a task's
    start or outcome: on a busy workflow, nearly always). The decisions stand, as a
    projection's do when such events land before it (no decision came, and what
    ``decide`` makes from a fold it makes from a later one: replay checks it), but the
    signal moved: they are numbered again after the log's last event and sent again,
    a round trip each time.
    """
    archived = ended = False
    i = moves = 0
    while i < len(chunks):
        last = i == len(chunks) - 1
        call = projector.apply_call(
            workflow_id,
            definition,
            chunks[i],
            {entry.seq: entry.time_ms},
            expected,
            folded,
            wake if last else None,
            done and last,
        )
        (raw,) = yield [call]
        reply = reply_code(checked(raw))
        if reply is Reply.CONFLICT and i == 0 and int(raw[1]) == MOVED:
            moves += 1
            if moves == SIGNAL_ROUNDS:
                return None  # moved on every round: decide again from what is new
            folded = (int(raw[2]), raw[3].decode() if isinstance(raw[3], bytes) else raw[3])
            entry, chunks = _renumbered(entry, chunks, folded[0] + 1)
            continue
        if reply is Reply.REBUILD and i == 0:
            yield from projector.rebuild_plan(workflow_id)
        if reply is not Reply.OK:
            # Past the first chunk the signal is in: recovery (its wake-up) goes on.
            return None if i == 0 else ([e for c in chunks for e in c], archived, ended)
        expected = int(raw[2])
        archived, ended = archived or bool(int(raw[3])), ended or bool(int(raw[4]))
        i += 1
    return [e for c in chunks for e in c], archived, ended


def _renumbered(
    entry: Entry, chunks: list[list[Event]], seq: int
) -> tuple[Entry, list[list[Event]]]:
    """The signal at sequence number ``seq``, and its decisions naming it there."""
    old = entry.seq
    return dataclasses.replace(entry, seq=seq), [
        [dataclasses.replace(e, cause=seq) if e.cause == old else e for e in chunk]
        for chunk in chunks
    ]


def signal(projector: Projector, workflow_id: str, name: str, payload: Any, sender: str) -> bool:
    """``signal_plan`` carried out on this thread; True if the signal was recorded,
    False if the workflow had received it already (a duplicate, ignored)."""
    applied = run(
        signal_plan(projector, workflow_id, name, payload, sender), projector.store.execute
    )
    return signalled(projector, workflow_id, applied)


def signalled(
    projector: Projector, workflow_id: str, applied: Applied | None, archive: bool = True
) -> bool:
    """After ``signal_plan``: settle what it applied (``archive``: archive a workflow it
    finished now, else its wake-up will); whether the signal was recorded."""
    if applied is None:
        log.info("signal_duplicate", workflow_id=workflow_id)
        return False
    projector.settle(workflow_id, *applied, archive=archive)
    return True
