"""Recording an attempt's outcome, and projecting it inline, in the thread that ran it.

``Recorder.record`` is the one call a worker makes with an outcome. The outcome script
records it with the barrier decrement its definition implies (so fan-in outcomes never
conflict); a group member's success that leaves its count short is acknowledged by the
script itself (a quiet outcome: nothing can follow from it). When the task is its
workflow's only one in flight, the decisions that follow are made ahead and sent in the
same round trip (speculation; the apply script checks the guess). Otherwise the
projection reads on from the entries the outcome script returned.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, NamedTuple

from streamflow.logs import get_logger
from streamflow.model import codec, schema
from streamflow.model.decide import decide, finished
from streamflow.model.definition import NONE, Definition
from streamflow.model.errors import ScriptError
from streamflow.model.events import (
    BarrierDecremented,
    Entry,
    Event,
    TaskFailed,
    TaskSucceeded,
    encode_event,
    encode_with_cause_hole,
)
from streamflow.model.messages import encode_wake
from streamflow.model.quiet import QuietCheck, counter_of, quiet_check
from streamflow.model.schema import RUNNING
from streamflow.model.state import State, fold
from streamflow.runtime.faults import crash_point
from streamflow.runtime.folds import Fold
from streamflow.runtime.jobs import Outcome
from streamflow.runtime.projector import APPLY_CHUNK, Projector, Trigger
from streamflow.store import scripts
from streamflow.store.log import parse_raw
from streamflow.store.scripts import Call, Reply, reply_code

log = get_logger(__name__)

CATCH_UP = 1000
"""At most this many log entries come back with an outcome, for the projection."""


class _Guess(NamedTuple):
    """Decisions made ahead of their cause."""

    definition: Definition
    decisions: list[Event]
    done: bool
    call: Call


class Recorder:
    """Records outcomes and projects them with ``projector``.

    Args:
        projector: the App's projector (its fold cache and apply).
        speculate: make the decisions that follow an outcome ahead of it when its task
            is alone in flight, and send both in one round trip.
    """

    def __init__(self, projector: Projector, *, speculate: bool = True) -> None:
        self.projector = projector
        self.store = projector.store
        self.speculate = speculate

    def record(self, outcome: Outcome) -> None:
        """Record ``outcome``, project it, and acknowledge its message.

        Raises:
            ScriptError: it did not settle (endless index rebuilds).
            redis.RedisError: Redis is unreachable (the message stays pending).
        """
        wf, event, task = outcome.workflow_id, outcome.event, outcome.task
        ok = isinstance(event, TaskSucceeded)
        final_failure = isinstance(event, TaskFailed) and event.retry_delay_ms is None
        # A success (or a tolerated final failure) decrements the task's barrier, in the
        # same script as the outcome: fan-in outcomes then never conflict.
        done = ok or (final_failure and task.allow_failure)
        decrement_key, head, tail = "", b"", b""
        if done and task.succ != NONE:
            decrement = BarrierDecremented(barrier=task.succ, source=outcome.node)
            decrement_key = decrement.idempotency_key()
            head, tail = encode_with_cause_hole(decrement)
        wake = encode_wake(wf, schema.outcome_key(outcome.node, outcome.attempt))
        payload = encode_event(event)
        kind = (
            schema.Outcome.SUCCESS
            if ok
            else schema.Outcome.FINAL
            if final_failure
            else schema.Outcome.RETRY
        )
        for _ in range(10):
            cached = self.projector.folds.get(wf)
            guess = self._guess(cached, outcome, payload, bool(decrement_key), head, tail, wake)
            if guess is None:
                check = quiet_check(outcome.definition, task, cached.state, ok=ok, done=done)
            else:  # the guess sent along makes the projection itself: no quiet check
                check = QuietCheck(0, counter_of(task, done=done), 0)
            call = scripts.outcome(
                wf=self.store.keys.workflow(wf),
                queue=outcome.queue_key,
                node=outcome.node,
                attempt=outcome.attempt,
                event=payload,
                kind=kind,
                decrement_key=decrement_key,
                decrement_head=head,
                decrement_tail=tail,
                wake=wake,
                grace_ms=self.projector.recovery_grace_ms,
                # A guess that fails, or an outcome that may be quiet (whose entries
                # nobody would fold), is followed by a projection that reads the log.
                catch_up_after=(
                    cached.state.last_id if guess is None and not check.reaches else ""
                ),
                catch_up_count=CATCH_UP,
                finalizer=task.finalizer,
                result_field=event.result_ref if isinstance(event, TaskSucceeded) else "",
                result_blob=outcome.blob,
                quiet_reaches=check.reaches,
                counter=check.counter,
                quiet_below=check.below,
                msg_id=outcome.msg_id if check.reaches else "",
                unless="" if task.signal is None else schema.signal_key(task.signal),
            )
            applied: Any = None
            if guess is None:
                raw = self.store.scripts.run(call)
            else:
                raw, applied = self.store.scripts.batch([call, guess.call])
                if isinstance(raw, Exception):
                    raise raw
                if isinstance(applied, Exception):
                    log.warning("speculative_apply_failed", workflow_id=wf, error=str(applied))
                    applied = None
            reply = reply_code(raw)
            if reply is Reply.REBUILD:
                self.projector.rebuild(wf)
                continue
            if reply is Reply.STALE:
                log.info(
                    "outcome_rejected", workflow_id=wf, node=outcome.node, attempt=outcome.attempt
                )
                self.store.ack(outcome.queue_key, outcome.msg_id)
                return
            if reply is not Reply.OK:
                raise ScriptError(f"outcome answered {raw!r:.200}")
            if guess is not None and applied is not None and reply_code(applied) is Reply.OK:
                # The decisions made ahead held: projected in the outcome's round trip.
                archived, ended = bool(int(applied[3])), bool(int(applied[4]))
                self.projector.settle(wf, guess.decisions, archived, ended, guess.done)
                return
            if int(raw[5]):
                return  # nothing follows from it: the script acknowledged the message
            caught_up = parse_raw(raw[3])
            # Fewer entries than asked for: the reply reached the log's end.
            fresh = self.projector.folds.fold_raw(wf, caught_up) and len(caught_up) < CATCH_UP
            cause = Entry(seq=int(raw[1]), stream_id=raw[2].decode(), event=event)
            crash_point("worker.after_record_before_project")
            trigger = Trigger(outcome.queue_key, outcome.msg_id, wake)
            self.projector.project(wf, cause, trigger, fresh=fresh)
            return
        raise ScriptError(f"recording the outcome of {wf} node {outcome.node} did not settle")

    def reproject(self, workflow_id: str, queue_key: str, msg_id: str) -> None:
        """The attempt already had its outcome: issue its projection again (then the
        message is acknowledged)."""
        self.projector.project(workflow_id, None, Trigger(queue_key, msg_id))

    def _guess(
        self,
        cached: Fold,
        outcome: Outcome,
        payload: bytes,
        decrements: bool,
        head: bytes,
        tail: bytes,
        wake: bytes,
    ) -> _Guess | None:
        """The apply call to send with the outcome, if its decisions can be made now:
        the cached fold says this task is its workflow's only one in flight, so nothing
        else is likely to be appended before it. The outcome and its decrement get the
        sequence numbers they will have if nothing else is appended first; the apply
        script checks exactly that (its guard)."""
        if not self.speculate:
            return None
        wf = outcome.workflow_id
        with cached.lock:
            state = cached.state
            if state.status != RUNNING:
                return None
            if len(state.attempt) - len(state.results) - len(state.failures) != 1:
                return None
            seq = state.n + 1
            expected, folded = state.last_decision, (state.n, state.last_id)
            trial = _trial_copy(state, outcome.task.succ if decrements else None)
        fold(trial, Entry(seq=seq, stream_id="0-0", event=outcome.event, size=len(payload)))
        if decrements:
            size = len(head) + len(codec.pack(seq)) + len(tail)
            event = BarrierDecremented(barrier=outcome.task.succ, source=outcome.node, cause=seq)
            fold(trial, Entry(seq=seq + 1, stream_id="0-0", event=event, size=size))
        definition = self.store.definitions.get(state.def_hash, wf)
        cause = Entry(seq=seq, stream_id="0-0", event=outcome.event, size=len(payload))
        decisions = decide(definition, trial, cause)
        if len(decisions) > APPLY_CHUNK:
            return None
        done = finished(definition, trial, decisions)
        call = self.projector.apply_call(
            wf,
            definition,
            decisions,
            {},  # due times relative to the outcome's time, which the script knows
            expected,
            folded,
            Trigger(outcome.queue_key, outcome.msg_id, wake),
            done,
            # Its position and its bytes: another run of this attempt may record first.
            guard=(
                schema.outcome_key(outcome.node, outcome.attempt),
                seq,
                hashlib.sha1(payload).hexdigest(),
            ),
        )
        return _Guess(definition, decisions, done, call)


def _trial_copy(state: State, barrier: int | None) -> State:
    """A copy of ``state`` that folding an outcome and its decrement (of ``barrier``)
    cannot disturb: only what those folds change is copied (dict copies, not a deep
    copy)."""
    decremented = dict(state.decremented)
    if barrier is not None:
        decremented[barrier] = set(decremented.get(barrier, ()))
    return dataclasses.replace(
        state,
        keys=dict(state.keys),
        results=dict(state.results),
        result_ids=dict(state.result_ids),
        failures=dict(state.failures),
        failure_ids=dict(state.failure_ids),
        exhausted=set(state.exhausted),
        decremented=decremented,
    )
