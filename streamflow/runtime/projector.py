"""Projection: catch a workflow's state up from its log, decide what follows, apply it.

Runs inline in the worker thread that recorded an outcome (``Recorder``), and in the
recovery loop on the wake-up streams (``Recovery``). Decisions are serialised per workflow by the
apply script (CONFLICT when the log holds a newer decision) and deduplicated by their
idempotency keys, so any number of projectors may work on one workflow at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import NamedTuple

from streamflow.logs import get_logger
from streamflow.model import schema
from streamflow.model.archive import encode_archive
from streamflow.model.decide import HISTORY_LIMIT_EXCEEDED, decide, decide_all, finished
from streamflow.model.definition import Definition
from streamflow.model.errors import DecodeError, DefinitionError, ScriptError
from streamflow.model.events import (
    Entry,
    Event,
    HistoryWarning,
    TaskSucceeded,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    encode_event,
    to_entry,
)
from streamflow.model.index import index_fields
from streamflow.model.messages import encode_wake
from streamflow.model.resume import UNREADABLE
from streamflow.model.schema import PENDING
from streamflow.model.state import fold_all
from streamflow.runtime.faults import crash_point
from streamflow.runtime.folds import Folds
from streamflow.store import scripts
from streamflow.store.connection import Store
from streamflow.store.decisions import slots_of
from streamflow.store.log import iter_log, log_plan
from streamflow.store.plan import Plan, checked, one, run
from streamflow.store.scripts import Call, Reply, reply_code

log = get_logger(__name__)


class Applied(NamedTuple):
    """What an apply did, for ``Projector.settle``."""

    decisions: list[Event]
    archived: bool
    ended: bool
    done: bool


APPLY_CHUNK = 1000
"""At most this many decisions per script call, so no call blocks Redis for long."""


def split_first(decisions: Sequence[Event]) -> tuple[list[Event], list[Event]]:
    """The first apply call's decisions (``APPLY_CHUNK``, or one more where the chunk
    would end between a node's enqueue and its decided success: the enqueue sends no
    message only beside it), and the rest."""
    end = APPLY_CHUNK
    if end < len(decisions) and isinstance(decisions[end], TaskSucceeded):
        end += 1
    return list(decisions[:end]), list(decisions[end:])


def chunked(decisions: Sequence[Event]) -> list[list[Event]]:
    """``decisions`` in apply calls, each split as ``split_first`` splits."""
    chunks: list[list[Event]] = []
    rest = list(decisions)
    while rest:
        chunk, rest = split_first(rest)
        chunks.append(chunk)
    return chunks


MAX_ROUNDS = 50
ARCHIVE_INLINE = 1000
"""A workflow ending with at most this many events is archived by the apply script
itself (uncompressed); a longer log is compressed and archived by the shell."""
_TERMINAL_STATUS = {
    WorkflowCompleted: schema.COMPLETED,
    WorkflowFailed: schema.FAILED,
    WorkflowCancelled: schema.CANCELLED,
}


class _Plan(NamedTuple):
    """What a projection applies: decisions for one cause, and what the apply checks."""

    definition: Definition
    decisions: list[Event]
    time_of: dict[int, int]
    expected: int
    folded: tuple[int, str]
    done: bool


@dataclasses.dataclass(slots=True)
class Trigger:
    """What a projection acknowledges when its decisions are in the log."""

    queue_key: str
    """Queue stream of the task message whose outcome caused the projection."""
    msg_id: str
    wake_member: bytes = b""
    """Recovery wake-up to cancel (scheduled by the outcome script)."""


class Projector:
    """Projects workflows on one Redis: cached folds, decide, apply, archive, rebuild."""

    def __init__(
        self, store: Store, *, recovery_grace_ms: int = 10_000, cache_size: int = 1024
    ) -> None:
        self.store = store
        self.recovery_grace_ms = recovery_grace_ms
        self.folds = Folds(store, cache_size)
        self.after_workflow: Callable[[str, str], None] | None = None
        """Called with (workflow id, status) when a projection here ended a workflow."""
        self.decided: Callable[[str, list[Event]], None] | None = None
        """Called with (workflow id, decisions) when a projection here applied some."""

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
            try:
                plan = self._plan(workflow_id, cause, fresh)
            except (DecodeError, DefinitionError) as exc:
                # Its log or its definition cannot be read: no fold can decide for it.
                self.end_unreadable(workflow_id, exc)
                plan = None
            fresh = False
            if plan is None:
                if trigger is not None and trigger.msg_id:
                    self.store.ack(trigger.queue_key, trigger.msg_id)
                return Reply.STALE
            definition, decisions, time_of, expected, folded, done = plan
            crash_point("projector.before_apply")
            # An ended workflow decides little (finalizer retries); the apply script still
            # acknowledges the trigger and cancels its wake-up, and archives it when done.
            reply, archived, ended = self._apply(
                workflow_id, definition, decisions, time_of, expected, folded, trigger, done
            )
            if reply is Reply.OK:
                if decisions:
                    bound.debug("decisions_applied", count=len(decisions), cause=expected)
                self.settle(workflow_id, decisions, archived, ended, done)
                return reply
            if reply is Reply.REBUILD:
                self.rebuild(workflow_id)
            elif reply is Reply.GONE:
                return reply
            # CONFLICT: a newer decision exists; TERMINAL: the workflow ended meanwhile
            # (the trigger is acknowledged). Catch up and decide again: an ended
            # workflow's round applies nothing but archives it once it is finished.
        raise ScriptError(f"projection of {workflow_id} did not settle in {MAX_ROUNDS} rounds")

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
        chunks = chunked(decisions)
        for i, chunk in enumerate(chunks or [[]]):
            last = i == len(chunks) - 1 or not chunks
            call = self.apply_call(
                workflow_id,
                definition,
                chunk,
                time_of,
                expected,
                folded,
                trigger if last else None,
                done and last,
            )
            raw = self.store.scripts.run(call)
            reply = reply_code(raw)
            if reply is Reply.CONFLICT and int(raw[1]) == -1:
                # The cached fold is not a prefix of the log (events lost in a crash or a
                # failover): fold it again from the start.
                log.warning("projection_cache_reset", workflow_id=workflow_id)
                self.folds.forget(workflow_id)
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
    ) -> Call:
        """One apply call (at most APPLY_CHUNK decisions)."""
        guard_key, guard_seq, guard_sha1 = guard or ("", 0, "")
        return scripts.apply(
            wf=self.store.keys.workflow(workflow_id),
            trigger_queue=trigger.queue_key if trigger is not None else "",
            decided=slots_of(self.store.keys, workflow_id, definition, decisions, time_of),
            expected=expected,
            trigger_msg_id=trigger.msg_id if trigger is not None else "",
            trigger_wake=trigger.wake_member if trigger is not None else b"",
            grace_ms=self.recovery_grace_ms,
            archive_wake=encode_wake(workflow_id, schema.END),
            archive_inline=ARCHIVE_INLINE,
            done=done,
            folded_seq=folded[0],
            folded_id=folded[1],
            guard_key=guard_key,
            guard_seq=guard_seq,
            guard_sha1=guard_sha1,
        )

    def _plan(self, workflow_id: str, cause: Entry | None, fresh: bool) -> _Plan | None:
        """What follows ``cause`` (None: everything the log implies), from the cached
        fold caught up (``fresh``: it is at the log's end already); None for a workflow
        not submitted.

        Raises:
            DecodeError: an entry of the log, or the definition, cannot be decoded.
            DefinitionError: its definition is not stored.
        """
        cached = self.folds.get(workflow_id)
        with cached.lock:
            entries: list[Entry] = []
            if cause is None:
                # A full re-check: one read of the whole log, folded afresh.
                log_key = self.store.keys.log(workflow_id)
                entries = [to_entry(item) for item in iter_log(self.store.client, log_key)]
                cached.state = fold_all(entries)
            elif not fresh:
                self.folds.catch_up(workflow_id, cached)
            state = cached.state
            if state.status == PENDING:
                return None
            definition = self.store.definitions.get(state.def_hash, workflow_id)
            if cause is None:
                decisions = decide_all(definition, state, entries)
                time_of = {e.seq: e.time_ms for e in entries}
            else:
                decisions = decide(definition, state, cause)
                time_of = {cause.seq: cause.time_ms}
            done = finished(definition, state, decisions)
            return _Plan(
                definition, decisions, time_of, state.last_decision, (state.n, state.last_id), done
            )

    def end_unreadable(self, workflow_id: str, exc: Exception) -> bool:
        """End a workflow whose log or definition cannot be read as failed, the error
        naming what was unreadable; returns whether this call ended it."""
        self.folds.forget(workflow_id)
        error = {"type": UNREADABLE, "message": f"{type(exc).__name__}: {exc}"}
        failed = encode_event(WorkflowFailed(error=error))
        call = scripts.fail(wf=self.store.keys.workflow(workflow_id), failed=failed)
        if reply_code(self.store.scripts.run(call)) is not Reply.OK:
            return False
        log.error("workflow_unreadable", workflow_id=workflow_id, error=error["message"])
        if self.after_workflow is not None:
            self.after_workflow(workflow_id, schema.FAILED)
        return True

    def settle(
        self,
        workflow_id: str,
        decisions: list[Event],
        archived: bool,
        ended: bool,
        done: bool,
        archive: bool = True,
    ) -> None:
        """After an apply (its own, or one sent with an outcome): archive a finished
        workflow the script could not (unless not ``archive``: its archive wake-up will),
        and tell the hooks of an end it recorded."""
        if decisions and self.decided is not None:
            self.decided(workflow_id, decisions)
        if archived:
            self.folds.forget(workflow_id)
        elif done and archive:
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

    # -- archive and rebuild --------------------------------------------------------

    def archive(self, workflow_id: str) -> bool:
        """Replace a finished workflow's log and index by one compressed archive string."""
        keys = self.store.keys
        for _ in range(5):
            raw = list(iter_log(self.store.client, keys.log(workflow_id)))
            if not raw:
                return False
            call = scripts.archive(
                wf=self.store.keys.workflow(workflow_id),
                length=len(raw),
                data=encode_archive(raw),
                archive_wake=encode_wake(workflow_id, schema.END),
            )
            reply = reply_code(self.store.scripts.run(call))
            if reply is Reply.OK:
                self.folds.forget(workflow_id)
                log.debug("workflow_archived", workflow_id=workflow_id, events=len(raw))
                return True
            if reply in (Reply.GONE, Reply.RUNNING):
                return False
        return False

    def rebuild(self, workflow_id: str, *, discard: bool = False) -> None:
        """Rebuild the derived index from the log with the pure fold (compare-and-set).

        ``discard``: delete the index first (it is derived: nothing is lost).
        """
        run(self.rebuild_plan(workflow_id, discard=discard), self.store.execute)

    def rebuild_plan(self, workflow_id: str, *, discard: bool = False) -> Plan[None]:
        """``rebuild`` as a plan."""
        keys = self.store.keys
        if discard:
            yield from one(("DEL", keys.idx(workflow_id)))
        for _ in range(MAX_ROUNDS):
            raw = yield from log_plan(keys, workflow_id)
            state = fold_all([to_entry(item) for item in raw])
            definition = None
            if state.def_hash:
                definition = yield from self.store.definitions.get_plan(state.def_hash, workflow_id)
            call = scripts.rebuild(
                wf=self.store.keys.workflow(workflow_id),
                length=len(raw),
                fields=index_fields(state, definition),
            )
            (reply_raw,) = yield [call]
            if reply_code(checked(reply_raw)) in (Reply.OK, Reply.GONE):
                self.folds.forget(workflow_id)
                log.warning("index_rebuilt", workflow_id=workflow_id, events=len(raw))
                return
        raise ScriptError(f"rebuilding the index of {workflow_id} did not settle")
