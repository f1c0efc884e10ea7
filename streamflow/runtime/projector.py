"""Projection: catch a workflow's state up from its log, decide what follows, apply it.

Runs inline in the worker thread that recorded an outcome, and in the recovery loop on
the wake-up streams (``RecoveryLoop``). Decisions are serialised per workflow by the
apply script (CONFLICT when the log holds a newer decision) and deduplicated by their
idempotency keys, so any number of projectors may work on one workflow at once.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis

from streamflow.logs import get_logger
from streamflow.model.archive import encode_archive
from streamflow.model.decide import HISTORY_LIMIT_EXCEEDED, decide, decide_all, finished
from streamflow.model.definition import Definition
from streamflow.model.errors import ScriptError
from streamflow.model.events import (
    TERMINAL,
    BarrierDecremented,
    BarrierReleased,
    Entry,
    Event,
    HistoryWarning,
    RawEntry,
    TaskEnqueued,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    encode_event,
    to_entry,
)
from streamflow.model.index import index_fields
from streamflow.model.messages import encode_task_message, encode_wake, shard_of
from streamflow.model.state import PENDING, RUNNING, State, fold, fold_all
from streamflow.runtime.faults import crash_point
from streamflow.store.definitions import Definitions
from streamflow.store.keys import Keys
from streamflow.store.log import iter_log
from streamflow.store.scripts import Reply, Scripts, reply_code

log = get_logger(__name__)

APPLY_CHUNK = 1000
"""At most this many decisions per script call, so no call blocks Redis for long."""
MAX_ROUNDS = 50
ARCHIVE_INLINE = 1000
"""A workflow ending with at most this many events is archived by the apply script
itself (uncompressed); a longer log is compressed and archived by the shell."""
_TERMINAL_STATUS = {
    WorkflowCompleted: "completed",
    WorkflowFailed: "failed",
    WorkflowCancelled: "cancelled",
}


@dataclasses.dataclass(slots=True)
class Trigger:
    """What a projection acknowledges when its decisions are in the log."""

    queue_key: str
    """Queue stream of the task message whose outcome caused the projection."""
    msg_id: str
    wake_member: bytes = b""
    """Recovery wake-up to cancel (scheduled by the outcome script)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Speculation:
    """Decisions made ahead of their cause (see ``Projector.speculate``)."""

    definition: Definition
    decisions: list[Event]
    expected: int
    folded: tuple[int, str]
    done: bool


def _trial_copy(state: State, decrement: Entry | None) -> State:
    """A copy of ``state`` that folding an outcome and its decrement cannot disturb:
    only what those folds change is copied (dict copies, not a deep copy)."""
    decremented = dict(state.decremented)
    if decrement is not None:
        barrier = decrement.event.barrier  # type: ignore[attr-defined]
        decremented[barrier] = set(decremented.get(barrier, ()))
    return dataclasses.replace(
        state,
        keys=dict(state.keys),
        results=dict(state.results),
        result_ids=dict(state.result_ids),
        failures=dict(state.failures),
        failure_ids=dict(state.failure_ids),
        decremented=decremented,
    )


class _Cached:
    __slots__ = ("lock", "state")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state = State()


def decision_slots(
    workflow_id: str,
    definition: Definition,
    events: Sequence[Event],
    time_of: dict[int, int],
    keys: Keys,
    key_list: list[str],
) -> list[Any]:
    """ARGV slots (8 per decision, see ``lua/_lib.lua``) for ``events``.

    Queue keys, each followed by its delayed set, are appended to ``key_list`` (their
    1-based positions are referenced from the slots). ``time_of`` maps a cause's
    sequence number to its time; a cause missing from it makes due times relative (the
    submit script adds its own).
    """
    shard = shard_of(workflow_id)
    positions: dict[str, int] = {}  # queue key -> its 1-based position in key_list
    slots: list[Any] = []
    for event in events:
        key = event.idempotency_key()
        payload = encode_event(event)
        if isinstance(event, TaskEnqueued):
            queue = definition.task(event.node).options.queue
            target = keys.queue(shard, queue)
            if target not in positions:
                # The queue's delayed set right after it: the script picks one by due time.
                key_list += [target, keys.delayed(shard, queue)]
                positions[target] = len(key_list) - 1
            due = event.delay_ms + time_of.get(event.cause, 0) if event.delay_ms else 0
            message = encode_task_message(workflow_id, event.node, event.attempt, definition.hash)
            kind = "F" if definition.task(event.node).finalizer else "E"
            position = positions[target]
            slots += [kind, key, payload, event.node, event.attempt, position, message, due]
        elif isinstance(event, BarrierDecremented):
            slots += ["D", key, payload, event.barrier, "", 0, "", 0]
        elif isinstance(event, BarrierReleased):
            slots += ["R", key, payload, "", "", 0, "", 0]
        elif isinstance(event, HistoryWarning):
            slots += ["W", key, payload, "", "", 0, "", 0]
        elif isinstance(event, TERMINAL):
            slots += ["T", key, payload, _TERMINAL_STATUS[type(event)], "", 0, "", 0]
        else:
            raise TypeError(f"{type(event).__name__} is not a decision")
    return slots


class Projector:
    """Projects workflows on one Redis: cached folds, decide, apply, archive, rebuild."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        scripts: Scripts,
        definitions: Definitions,
        *,
        recovery_grace_ms: int = 10_000,
        cache_size: int = 1024,
    ) -> None:
        self.client = client
        self.keys = keys
        self.scripts = scripts
        self.definitions = definitions
        self.recovery_grace_ms = recovery_grace_ms
        self._cache: collections.OrderedDict[str, _Cached] = collections.OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self.after_workflow: Callable[[str, str], None] | None = None
        """Called with (workflow id, status) when a projection here ended a workflow."""

    # -- the fold cache -------------------------------------------------------------

    def cached(self, workflow_id: str) -> _Cached:
        with self._cache_lock:
            found = self._cache.get(workflow_id)
            if found is None:
                found = self._cache[workflow_id] = _Cached()
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(workflow_id)
            return found

    def forget(self, workflow_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(workflow_id, None)

    def last_id(self, workflow_id: str) -> str:
        """Stream id up to which the cached fold has read (``0-0``: nothing)."""
        return self.cached(workflow_id).state.last_id

    def fold_raw(self, workflow_id: str, raw: Sequence[RawEntry]) -> bool:
        """Fold entries read elsewhere (e.g. returned by the outcome script) into the cache.

        Returns whether the cache now ends exactly where ``raw`` ends (it may not: a cache
        evicted meanwhile starts over and cannot use a tail of the log).
        """
        cached = self.cached(workflow_id)
        with cached.lock:
            for item in raw:
                if item[1] == cached.state.n + 1:
                    fold(cached.state, to_entry(item))
            return bool(raw) and cached.state.n == raw[-1][1]

    def _catch_up(self, workflow_id: str, cached: _Cached) -> None:
        for item in iter_log(self.client, self.keys.log(workflow_id), cached.state.last_id):
            if item[1] == cached.state.n + 1:
                fold(cached.state, to_entry(item))
            elif item[1] > cached.state.n + 1:
                # A gap means the cache is not a prefix of this log (it was rebuilt or
                # replaced): start over from the beginning.
                cached.state = State()
                self._catch_up(workflow_id, cached)
                return

    # -- projection -----------------------------------------------------------------

    def project(
        self,
        workflow_id: str,
        cause: Entry | None,
        trigger: Trigger | None = None,
        *,
        fresh: bool = False,
    ) -> Reply:
        """Decide and apply what follows ``cause`` (None: everything the log implies).

        Acknowledges ``trigger`` with the last chunk. ``fresh``: the cached fold was just
        brought to the log's end (by the outcome script's reply), so the first round
        skips reading the log. Returns the final reply: OK, GONE (archived: nothing to
        decide), or STALE if the workflow does not exist.
        """
        bound = log.bind(workflow_id=workflow_id)
        for _ in range(MAX_ROUNDS):
            cached = self.cached(workflow_id)
            with cached.lock:
                entries: list[Entry] = []
                if cause is None:
                    # A full re-check: one read of the whole log, folded afresh.
                    log_key = self.keys.log(workflow_id)
                    entries = [to_entry(item) for item in iter_log(self.client, log_key)]
                    cached.state = fold_all(entries)
                elif not fresh:
                    self._catch_up(workflow_id, cached)
                fresh = False
                state = cached.state
                if state.status == PENDING:
                    if trigger is not None:
                        self._ack(trigger)
                    return Reply.STALE
                definition = self.definitions.get(state.def_hash)
                if cause is None:
                    decisions = decide_all(definition, state, entries)
                    time_of = {e.seq: e.time_ms for e in entries}
                else:
                    decisions = decide(definition, state, cause)
                    time_of = {cause.seq: cause.time_ms}
                expected = state.last_decision
                folded = (state.n, state.last_id)
                done = finished(definition, state, decisions)
            crash_point("projector.before_apply")
            # An ended workflow decides little (finalizer retries); the apply script still
            # acknowledges the trigger and cancels its wake-up, and archives it when done.
            reply, archived, ended = self._apply(
                workflow_id, definition, decisions, time_of, expected, folded, trigger, done
            )
            if reply is Reply.OK:
                if decisions:
                    bound.debug("decisions_applied", count=len(decisions), cause=expected)
                self._settle(workflow_id, decisions, archived, ended, done)
                return reply
            if reply is Reply.REBUILD:
                self.rebuild(workflow_id)
            elif reply is Reply.GONE:
                return reply
            # CONFLICT: a newer decision exists; TERMINAL: the workflow ended meanwhile
            # (the trigger is acknowledged). Catch up and decide again: an ended
            # workflow's round applies nothing but archives it once it is finished.
        raise ScriptError(f"projection of {workflow_id} did not settle in {MAX_ROUNDS} rounds")

    def _settle(
        self, workflow_id: str, decisions: list[Event], archived: bool, ended: bool, done: bool
    ) -> None:
        """After an apply: archive a finished workflow the script could not, and tell the
        hooks of an end recorded by this call."""
        if archived:
            self.forget(workflow_id)
        elif done:
            crash_point("projector.after_apply_before_archive")
            self.archive(workflow_id)
        for event in decisions:
            if isinstance(event, HistoryWarning):
                log.warning(
                    "history_budget_warning",
                    workflow_id=workflow_id,
                    events=event.events,
                    bytes=event.bytes,
                )
            elif (
                ended
                and isinstance(event, WorkflowFailed)
                and event.error.get("type") == HISTORY_LIMIT_EXCEEDED
            ):
                log.error(
                    "history_limit_exceeded",
                    workflow_id=workflow_id,
                    message=event.error["message"],
                )
        if ended and self.after_workflow is not None:
            end = next(e for e in decisions if type(e) in _TERMINAL_STATUS)
            self.after_workflow(workflow_id, _TERMINAL_STATUS[type(end)])

    def cancel(self, workflow_id: str, reason: str) -> bool:
        """Record WorkflowCancelled (once); False if the workflow had already ended.

        Raises:
            ScriptError: it did not settle (endless conflicts).
        """
        for _ in range(MAX_ROUNDS):
            cached = self.cached(workflow_id)
            with cached.lock:
                self._catch_up(workflow_id, cached)
                state = cached.state
                if state.status != RUNNING:
                    return False
                definition = self.definitions.get(state.def_hash)
                decisions: list[Event] = [WorkflowCancelled(reason=reason, cause=state.n)]
                expected, folded = state.last_decision, (state.n, state.last_id)
                done = finished(definition, state, decisions)
            reply, archived, ended = self._apply(
                workflow_id, definition, decisions, {}, expected, folded, None, done
            )
            if reply is Reply.OK:
                self._settle(workflow_id, decisions, archived, ended, done)
                log.info("workflow_cancelled", workflow_id=workflow_id, reason=reason)
                return ended
            if reply in (Reply.TERMINAL, Reply.GONE):
                return False
            if reply is Reply.REBUILD:
                self.rebuild(workflow_id)
        raise ScriptError(f"cancelling {workflow_id} did not settle in {MAX_ROUNDS} rounds")

    def _apply(
        self,
        workflow_id: str,
        definition: Definition,
        decisions: list[Event],
        time_of: dict[int, int],
        expected: int,
        folded: tuple[int, str],
        trigger: Trigger | None,
        done: bool,
    ) -> tuple[Reply, bool, bool]:
        """Apply in chunks; returns the last reply, whether the script archived the
        workflow (``done``: it is finished once these decisions are in), and whether
        this call recorded its end."""
        archived = ended = False
        chunks = [decisions[i : i + APPLY_CHUNK] for i in range(0, len(decisions), APPLY_CHUNK)]
        for i, chunk in enumerate(chunks or [[]]):
            last = i == len(chunks) - 1 or not chunks
            key_list, args = self.apply_call(
                workflow_id,
                definition,
                chunk,
                time_of,
                expected,
                folded,
                trigger if last else None,
                done and last,
            )
            raw = self.scripts.call("apply", key_list, args)
            reply = reply_code(raw)
            if reply is Reply.CONFLICT and int(raw[1]) == -1:
                # The cached fold is not a prefix of the log (events lost in a crash or a
                # failover): fold it again from the start.
                log.warning("projection_cache_reset", workflow_id=workflow_id)
                self.forget(workflow_id)
            if reply is not Reply.OK:
                return reply, False, False
            expected = int(raw[2])
            if not last:
                crash_point("projector.between_chunks")
            archived = archived or bool(int(raw[3]))
            ended = ended or bool(int(raw[4]))
        return Reply.OK, archived, ended

    def apply_call(
        self,
        workflow_id: str,
        definition: Definition,
        decisions: list[Event],
        time_of: dict[int, int],
        expected: int,
        folded: tuple[int, str],
        trigger: Trigger | None,
        done: bool,
        guard: tuple[str, int, str] | None = None,
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of one apply call (at most APPLY_CHUNK decisions)."""
        keys = self.keys
        shard = shard_of(workflow_id)
        key_list = [
            keys.log(workflow_id),
            keys.idx(workflow_id),
            keys.archive(workflow_id),
            keys.active(shard),
            keys.wake_due(shard),
            trigger.queue_key if trigger is not None else keys.log(workflow_id),
            keys.expiry(shard),
            keys.ended(shard),
        ]
        slots = decision_slots(workflow_id, definition, decisions, time_of, keys, key_list)
        args = [
            workflow_id,
            expected,
            trigger.msg_id if trigger is not None else "",
            trigger.wake_member if trigger is not None else "",
            keys.done_channel(workflow_id),
            self.recovery_grace_ms,
            encode_wake(workflow_id, "end"),
            len(decisions),
            ARCHIVE_INLINE,
            "1" if done else "0",
            *folded,
            *(guard or ("", 0, "")),
            *slots,
        ]
        return key_list, args

    def speculate(
        self, workflow_id: str, outcome: Entry, decrement: Entry | None
    ) -> Speculation | None:
        """Decisions that will follow an outcome not yet recorded, if the cached fold
        says this task is the workflow's only one in flight (then nothing else is likely
        to be appended before it, and the apply can go in the outcome's round trip).

        ``outcome`` and ``decrement`` carry the sequence numbers they will get if
        nothing else is appended first; the apply script checks exactly that (its guard).
        """
        cached = self.cached(workflow_id)
        with cached.lock:
            state = cached.state
            if state.status != RUNNING or outcome.seq != state.n + 1:
                return None
            if len(state.attempt) - len(state.results) - len(state.failures) != 1:
                return None
            trial = _trial_copy(state, decrement)
        fold(trial, outcome)
        if decrement is not None:
            fold(trial, decrement)
        definition = self.definitions.get(state.def_hash)
        decisions = decide(definition, trial, outcome)
        if len(decisions) > APPLY_CHUNK:
            return None
        return Speculation(
            definition=definition,
            decisions=decisions,
            expected=state.last_decision,
            folded=(state.n, state.last_id),
            done=finished(definition, trial, decisions),
        )

    def settle(
        self, workflow_id: str, decisions: list[Event], archived: bool, ended: bool, done: bool
    ) -> None:
        """After a speculative apply went through: as after any projection."""
        self._settle(workflow_id, decisions, archived, ended, done)

    def _ack(self, trigger: Trigger) -> None:
        if not trigger.msg_id:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(trigger.queue_key, "workers", trigger.msg_id)
        pipe.xdel(trigger.queue_key, trigger.msg_id)
        pipe.execute()

    # -- archive and rebuild --------------------------------------------------------

    def archive(self, workflow_id: str) -> bool:
        """Replace a finished workflow's log and index by one compressed archive string."""
        keys = self.keys
        shard = shard_of(workflow_id)
        for _ in range(5):
            raw = list(iter_log(self.client, keys.log(workflow_id)))
            if not raw:
                return False
            reply = reply_code(
                self.scripts.call(
                    "archive",
                    [
                        keys.log(workflow_id),
                        keys.idx(workflow_id),
                        keys.archive(workflow_id),
                        keys.active(shard),
                        keys.wake_due(shard),
                        keys.expiry(shard),
                        keys.ended(shard),
                    ],
                    [workflow_id, len(raw), encode_archive(raw), encode_wake(workflow_id, "end")],
                )
            )
            if reply is Reply.OK:
                self.forget(workflow_id)
                log.debug("workflow_archived", workflow_id=workflow_id, events=len(raw))
                return True
            if reply in (Reply.GONE, Reply.RUNNING):
                return False
        return False

    def rebuild(self, workflow_id: str, *, discard: bool = False) -> None:
        """Rebuild the derived index from the log with the pure fold (compare-and-set).

        ``discard``: delete the index first (it is derived: nothing is lost).
        """
        keys = self.keys
        if discard:
            self.client.delete(keys.idx(workflow_id))
        for _ in range(MAX_ROUNDS):
            raw = list(iter_log(self.client, keys.log(workflow_id)))
            state = State()
            for item in raw:
                fold(state, to_entry(item))
            definition = self.definitions.get(state.def_hash) if state.def_hash else None
            pairs: list[Any] = []
            for field, value in index_fields(state, definition).items():
                pairs += [field, value]
            reply = reply_code(
                self.scripts.call(
                    "rebuild",
                    [keys.log(workflow_id), keys.idx(workflow_id), keys.archive(workflow_id)],
                    [len(raw), *pairs],
                )
            )
            if reply in (Reply.OK, Reply.GONE):
                self.forget(workflow_id)
                log.warning("index_rebuilt", workflow_id=workflow_id, events=len(raw))
                return
        raise ScriptError(f"rebuilding the index of {workflow_id} did not settle")
