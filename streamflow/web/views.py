"""What each page of the dashboard shows, read from Redis through the library and made
JSON-ready: the workflows, one workflow, the dead letters, the workers, the queues.

Every read is bounded: lists take a limit with a ceiling, a workflow shows its newest
events and its first ``graph.MAX_NODES`` nodes. Listing workflows reads the newest from
each shard's submitted index (there is none by actor: the actor filter looks at the
newest ``FILTER_SCAN``), and one listing serves every viewer for ``LISTING_TTL_S``.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import threading
import time
from http import HTTPStatus
from typing import Any

from streamflow.api.app import App
from streamflow.api.submit import check_workflow_id
from streamflow.history.listing import WorkflowSummary
from streamflow.model.definition import TASK, Definition, TaskNode
from streamflow.model.errors import (
    DefinitionError,
    ResumeError,
    StreamflowError,
    WorkflowNotFoundError,
)
from streamflow.model.events import (
    Entry,
    OutOfLine,
    TaskFailed,
    TaskStarted,
    WorkflowSubmitted,
    to_entry,
)
from streamflow.model.schema import DEFINITION, TERMINAL_STATUSES
from streamflow.model.state import State, fold_all
from streamflow.store import roster
from streamflow.store.log import many_plan, raw_plan
from streamflow.store.plan import run
from streamflow.store.queues import queue_stats, totals
from streamflow.web.errors import WebError
from streamflow.web.graph import MAX_NODES, STATES, layout, task_state
from streamflow.web.values import call_arguments, jsonable, message_contents

LISTING_TTL_S = 2.0
"""How long one listing of the workflows serves every viewer."""
FILTER_SCAN = 1000
"""Filtering by actor or time looks at the newest this many workflows (of the status)."""
RECENT_MS = 3600 * 1000
"""Workers that stopped or went silent within this long are shown (all: a day's)."""
_DEAD_ID = re.compile(r"\d+-\d+")


class Views:
    """The dashboard's reads on one App (shared by every request; thread-safe)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._listings: dict[str | None, tuple[float, int, list[WorkflowSummary]]] = {}
        self._actors: collections.OrderedDict[str, frozenset[str]] = collections.OrderedDict()

    # -- workflows ------------------------------------------------------------------------

    def workflows(
        self,
        *,
        status: str | None,
        actor: str | None,
        since_ms: int | None,
        until_ms: int | None,
        limit: int,
    ) -> dict[str, Any]:
        """The newest workflows (of ``status``), optionally only those running ``actor``
        or submitted within ``[since_ms, until_ms]``; filters look at the newest
        ``FILTER_SCAN``."""
        filtered = actor is not None or since_ms is not None or until_ms is not None
        candidates = self._listing(status, FILTER_SCAN if filtered else limit)
        found = [
            s
            for s in candidates
            if (since_ms is None or s.submitted_ms >= since_ms)
            and (until_ms is None or s.submitted_ms <= until_ms)
        ]
        if actor is not None:
            actors = self._actors_of([s.workflow_id for s in found])
            found = [s for s in found if actor in actors.get(s.workflow_id, ())]
        return {
            "workflows": [dataclasses.asdict(s) for s in found[:limit]],
            "scanned": len(candidates),
            "scan_limit": FILTER_SCAN if filtered else limit,
        }

    def _listing(self, status: str | None, limit: int) -> list[WorkflowSummary]:
        """``App.workflows``, read at most once per ``LISTING_TTL_S`` per status."""
        now = time.monotonic()
        with self._lock:
            cached = self._listings.get(status)
        if cached is not None and now - cached[0] < LISTING_TTL_S and cached[1] >= limit:
            return cached[2][:limit]
        try:
            found = self.app.workflows(status, limit)
        except ValueError as exc:
            raise WebError(HTTPStatus.BAD_REQUEST, str(exc)) from None
        with self._lock:
            self._listings[status] = (now, limit, found)
        return found

    def _actors_of(self, workflow_ids: list[str]) -> dict[str, frozenset[str]]:
        """The actors of each workflow's definition (remembered: it never changes), read
        from its index, else from its log or archive; a removed one is left out."""
        with self._lock:
            known = {wf: self._actors[wf] for wf in workflow_ids if wf in self._actors}
        missing = [wf for wf in workflow_ids if wf not in known]
        if not missing:
            return known
        keys = self.app.keys
        hashes = self.app.store.execute([("HGET", keys.idx(wf), DEFINITION) for wf in missing])
        unindexed = [wf for wf, found in zip(missing, hashes, strict=True) if not found]
        def_hash = {wf: h.decode() for wf, h in zip(missing, hashes, strict=True) if h}
        reads = run(many_plan(keys, unindexed), self.app.store.execute) if unindexed else []
        for wf, read in zip(unindexed, reads, strict=True):
            first = to_entry(read[0][0]).event if read and read[0] else None
            if isinstance(first, WorkflowSubmitted):
                def_hash[wf] = first.def_hash
        for wf, digest in def_hash.items():
            try:
                definition = self.app.definitions.get(digest, wf)
            except DefinitionError:
                continue  # removed with its last workflow since the listing
            known[wf] = frozenset(n.actor for n in definition.nodes if isinstance(n, TaskNode))
            self._remember(wf, known[wf])
        return known

    def _remember(self, workflow_id: str, actors: frozenset[str]) -> None:
        with self._lock:
            self._actors[workflow_id] = actors
            while len(self._actors) > 10 * FILTER_SCAN:
                self._actors.popitem(last=False)

    # -- one workflow ---------------------------------------------------------------------

    def checked_id(self, workflow_id: str) -> str:
        """``workflow_id`` if it is one of this App's.

        Raises:
            WebError: 400, it is not.
        """
        try:
            check_workflow_id(workflow_id, self.app.shards)
        except ValueError as exc:
            raise WebError(HTTPStatus.BAD_REQUEST, str(exc)) from None
        return workflow_id

    def workflow(self, workflow_id: str, events: int) -> dict[str, Any]:
        """One workflow: its summary, its DAG with each node's state, each task's
        arguments, result, error and times, and its newest ``events`` events.

        Raises:
            WebError: 400, a malformed id.
            WebError: 404, no such workflow (never submitted, or removed).
        """
        try:
            raw, archived = run(raw_plan(self.app.keys, self.checked_id(workflow_id)), self._do)
        except WorkflowNotFoundError:
            raise WebError(
                HTTPStatus.NOT_FOUND, f"no workflow with id {workflow_id!r} (unknown or expired)"
            ) from None
        history = [to_entry(item) for item in raw]
        state = fold_all(history)
        try:
            definition = self.app.definitions.get(state.def_hash, workflow_id)
        except DefinitionError as exc:
            raise WebError(
                HTTPStatus.NOT_FOUND, f"workflow {workflow_id!r} has no readable definition: {exc}"
            ) from None
        return {
            "workflow_id": workflow_id,
            "status": state.status,
            "archived": archived,
            "submitted_ms": state.submitted_ms,
            "ended_ms": state.finished_ms or None,
            "events_total": len(history),
            "counts": _counts(definition, state),
            "error": jsonable(state.end.get("error")),
            "reason": state.end.get("reason"),
            "parent": state.options.get("parent"),
            "children": [
                {
                    "workflow_id": c.child,
                    "node": c.node,
                    "attempt": c.attempt,
                    "detached": c.detached,
                }
                for c in state.children.values()
            ],
            "graph": layout(definition, state),
            "tasks": _tasks(definition, state, history),
            "events": [_event_row(entry) for entry in history[-events:]],
        }

    def _do(self, commands: Any) -> list[Any]:
        return self.app.store.execute(commands)

    def cancel(self, workflow_id: str, reason: str) -> dict[str, Any]:
        """Cancel a running workflow.

        Raises:
            WebError: 400, a malformed id.
            WebError: 404, no such workflow.
            WebError: 409, it had already ended.
        """
        handle = self.app.handle(self.checked_id(workflow_id))
        try:
            status = handle.status().status
        except LookupError:
            raise WebError(
                HTTPStatus.NOT_FOUND, f"no workflow with id {workflow_id!r} (unknown or expired)"
            ) from None
        if status in TERMINAL_STATUSES or not handle.cancel(reason):
            raise WebError(
                HTTPStatus.CONFLICT, f"workflow {workflow_id} had already ended ({status})"
            )
        return {"workflow_id": workflow_id, "cancelled": True}

    def resume_workflow(self, workflow_id: str, reason: str) -> dict[str, Any]:
        """Resume a failed workflow from where it failed.

        Raises:
            WebError: 400, a malformed id.
            WebError: 409, it is not failed (or unknown).
        """
        try:
            nodes = self.app.resume_workflow(
                self.checked_id(workflow_id), reason=reason, by="the dashboard"
            )
        except ResumeError as refused:
            raise WebError(HTTPStatus.CONFLICT, str(refused)) from None
        return {"workflow_id": workflow_id, "resumed": nodes}

    def requeue(self, dead_id: str) -> dict[str, Any]:
        """Put a dead letter back on its queue.

        Raises:
            WebError: 400, not a stream id.
            WebError: 404, no dead letter has it.
            WebError: 409, it belongs to a workflow that has ended.
        """
        try:
            new_id = self.app.dead_letters.requeue(self.checked_dead_id(dead_id))
        except KeyError:
            raise WebError(HTTPStatus.NOT_FOUND, f"no dead letter with id {dead_id!r}") from None
        except StreamflowError as exc:
            raise WebError(HTTPStatus.CONFLICT, str(exc)) from None
        return {"requeued": dead_id, "message_id": new_id}

    # -- dead letters, workers, queues ----------------------------------------------------

    def dead_letters(self, limit: int) -> dict[str, Any]:
        """The oldest ``limit`` dead letters, and how many there are."""
        letters = self.app.dead_letters
        total = int(self.app.client.xlen(letters.key))
        return {"dead_letters": [_letter(each) for each in letters.list(limit)], "total": total}

    def dead_letter(self, dead_id: str) -> dict[str, Any]:
        """One dead letter, with its bytes (hex) and what they say.

        Raises:
            WebError: 400, not a stream id.
            WebError: 404, no dead letter has it.
        """
        try:
            letter = self.app.dead_letters.get(self.checked_dead_id(dead_id))
        except KeyError:
            raise WebError(HTTPStatus.NOT_FOUND, f"no dead letter with id {dead_id!r}") from None
        return {
            **_letter(letter),
            "data_hex": letter.data[:4096].hex(),
            "contents": message_contents(letter.data),
        }

    def checked_dead_id(self, dead_id: str) -> str:
        """``dead_id`` if it looks like a dead letter's id.

        Raises:
            WebError: 400, it does not.
        """
        if not _DEAD_ID.fullmatch(dead_id):
            raise WebError(
                HTTPStatus.BAD_REQUEST,
                f"a dead letter's id looks like 1765112345678-0 (got {dead_id!r})",
            )
        return dead_id

    def workers(self, everyone: bool) -> dict[str, Any]:
        """The worker cards: live ones, and those gone within ``RECENT_MS`` (``everyone``:
        every card remembered)."""
        now_ms = self.app.store.now_ms(0)
        cards = [
            {**dataclasses.asdict(card), "state": card.state(now_ms)}
            for card in roster.read(self.app.client, self.app.keys)
            if everyone or now_ms - (card.stopped_ms or card.last_beat_ms) <= RECENT_MS
        ]
        return {"workers": cards, "now_ms": now_ms}

    def queues(self, by_shard: bool) -> dict[str, Any]:
        """What each queue holds (``by_shard``: per shard too), and what is paused."""
        stats = queue_stats(self.app.store)
        paused = self.app.paused()
        return {
            "queues": [dataclasses.asdict(each) for each in (stats if by_shard else totals(stats))],
            "paused": {"queues": sorted(paused.queues), "actors": sorted(paused.actors)},
        }


def _letter(letter: Any) -> dict[str, Any]:
    fields = dataclasses.asdict(letter)
    data: bytes = fields.pop("data")
    return {**fields, "queue_name": letter.queue.rpartition(":q:")[2], "size": len(data)}


def _tasks(definition: Definition, state: State, history: list[Entry]) -> list[dict[str, Any]]:
    """Each task's details: actor, queue, attempts, arguments, result or error, the
    last error of a retried attempt, and when its current attempt started and ended."""
    started: dict[int, int] = {}
    last_error: dict[int, Any] = {}
    for entry in history:
        event = entry.event
        if isinstance(event, TaskStarted) and event.attempt == state.attempt.get(event.node):
            started.setdefault(event.node, entry.time_ms)
        elif isinstance(event, TaskFailed):
            last_error[event.node] = event.error
    outcome_ids = {**state.result_ids, **state.failure_ids}
    out = []
    for node in definition.nodes:
        if not isinstance(node, TaskNode) or node.id >= MAX_NODES:
            continue
        out.append(
            {
                "node": node.id,
                "actor": node.actor,
                "queue": node.options.queue,
                "attempts": state.attempt.get(node.id, 0),
                "arguments": call_arguments(state.args.get(node.id)),
                "result": _result(state.results[node.id]) if node.id in state.results else None,
                "error": jsonable(state.failures.get(node.id) or last_error.get(node.id)),
                "started_ms": started.get(node.id),
                "ended_ms": _ms(outcome_ids[node.id]) if node.id in outcome_ids else None,
            }
        )
    return out


def _event_row(entry: Entry) -> dict[str, Any]:
    """One event of the timeline: its sequence number, time, type, and fields (not the
    submission's arguments nor an error's traceback: the tasks show those)."""
    event = entry.event
    fields = {
        f.name: jsonable(_without_traceback(getattr(event, f.name)))
        for f in dataclasses.fields(event)
        if f.name not in ("args", "cause")
    }
    return {"seq": entry.seq, "time_ms": entry.time_ms, "type": type(event).__name__, **fields}


def _result(value: Any) -> Any:
    """A task's result as shown: one stored out of line is large, and not read (a page
    shows a glimpse; ``streamflow result`` reads it all)."""
    if isinstance(value, OutOfLine):
        return f"(a large result, stored out of line in field {value.field!r} of its results)"
    return jsonable(value)


def _without_traceback(value: Any) -> Any:
    if isinstance(value, dict) and "traceback" in value:
        return {k: v for k, v in value.items() if k != "traceback"}
    return value


def _counts(definition: Definition, state: State) -> dict[str, int]:
    """Tasks per state, in the words the DAG's colours use (callbacks not counted)."""
    found = dict.fromkeys(STATES, 0)
    for node in definition.nodes:
        if isinstance(node, TaskNode) and node.role == TASK:
            found[task_state(state, node.id)] += 1
    return found


def _ms(stream_id: str) -> int:
    return int(stream_id.partition("-")[0])
