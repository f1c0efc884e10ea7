"""Child workflows: a ``Child(canvas)`` node runs ``canvas`` as a workflow of its own
and takes its outcome as the node's (its result piped on, its failure the node's).

The node's run (the built-in actor ``@child``) submits the child under an id derived
from the node's attempt, so a redelivered run submits nothing new, and parks; the child
records its parent (``options["parent"]``) in its ``WorkflowSubmitted``. When the child
ends, the process that ended it sends the parent node's message again; that run finds
the child ended and records its outcome. Should that process die first, the parent's
sweep re-sends the message (the attempt is started, and its message gone).

A task starts children of its own with ``current_task().submit(canvas)``
(``start_child``): the k-th child of an attempt has an id derived from it, and nothing
waits for it. Either way the parent's log records ``ChildStarted`` before the child is
submitted, and cancelling the parent cancels every child not started detached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from streamflow.api.canvas import Canvas, Message, check_canvas
from streamflow.api.compile import compile_canvas
from streamflow.api.handles import WorkflowHandle
from streamflow.api.signals import builtin_node
from streamflow.api.submit import Submission, decided, submission_options, write_workflow
from streamflow.logs import get_logger
from streamflow.model import schema
from streamflow.model.children import MARK, child_workflow_id
from streamflow.model.definition import CHILD_ACTOR, Definition
from streamflow.model.errors import ResultFailure, ResultMissing, StreamflowError
from streamflow.model.events import ChildStarted, Entry, WorkflowSubmitted, encode_event
from streamflow.model.messages import encode_task_message, shard_of
from streamflow.model.options import DEFAULT_QUEUE, HistoryBudget
from streamflow.model.schema import CANCELLED, TERMINAL_STATUSES, child_key
from streamflow.model.version import __version__
from streamflow.runtime.context import TaskContext, current_task
from streamflow.runtime.jobs import Parked
from streamflow.runtime.projector import Projector
from streamflow.store import scripts
from streamflow.store.connection import Store
from streamflow.store.keys import Keys
from streamflow.store.scripts import Reply, reply_code


class App(Protocol):
    """What this module needs of an App (``streamflow.api.app.App``)."""

    retention_ms: int
    history_budget: HistoryBudget | None
    store: Store
    projector: Projector
    client: Any
    keys: Keys

    def handle(self, workflow_id: str) -> WorkflowHandle[Any]: ...

    def history(self, workflow_id: str) -> list[Entry]: ...

    def retrying(self, call: Callable[[], T]) -> T: ...


log = get_logger(__name__)
T = TypeVar("T")


class ChildFailed(StreamflowError):
    """A child workflow ended without a result (failed, or cancelled); recorded as the
    failure of its node (then the node's retries start a new child)."""


def Child(  # a canvas node, named like the others (Chain, Group)
    canvas: Canvas,
    *,
    max_retries: int = 0,
    min_backoff: float = 1.0,
    max_backoff: float = 60.0,
    allow_failure: bool = False,
    queue: str = DEFAULT_QUEUE,
) -> Message[Any]:
    """A node that runs ``canvas`` as a child workflow of its own (with its own log,
    history and id) and takes its outcome: its result is piped on, its failure is the
    node's (``ChildFailed``; ``max_retries`` start a new child). What is piped into the
    node is ignored. Cancelling the parent cancels the child.

    Raises:
        TypeError: ``canvas`` is not a canvas.
    """
    check_canvas(canvas, "Child canvas")
    compiled = compile_canvas(canvas)
    node = builtin_node(
        CHILD_ACTOR,
        queue=queue,
        max_retries=max_retries,
        min_backoff=min_backoff,
        max_backoff=max_backoff,
        allow_failure=allow_failure,
        args=(compiled.definition.to_bytes, dict(compiled.args)),
    )
    return dataclasses.replace(node, child=canvas)


class ChildError(StreamflowError):
    """A child workflow could not be started: its parent has ended (or is gone)."""


def start_child(
    app: App, task: TaskContext, canvas: Canvas, *, detached: bool, n: int
) -> WorkflowHandle[Any]:
    """``current_task().submit(canvas)``: start ``canvas`` as the ``n``-th child of the
    running attempt (the same child on every run of it) and return its handle.

    Raises:
        TypeError: ``canvas`` is not a canvas.
        ChildError: the task's workflow has ended.
    """
    check_canvas(canvas, "child workflow canvas")
    compiled = compile_canvas(canvas)
    child_id = child_workflow_id(task.workflow_id, task.node, task.attempt, n)
    _start(app, task, child_id, compiled.definition, dict(compiled.args), detached)
    return app.handle(child_id)


def _start(
    app: App,
    task: TaskContext,
    child_id: str,
    definition: Definition,
    args: dict[int, bytes],
    detached: bool,
) -> None:
    """Record ``ChildStarted`` in the parent's log, then submit the child (both at most
    once). The record comes first, so the parent's log names every child that may
    exist; a cancel of the parent that came between the two cancels the child here."""
    parent = task.workflow_id
    started = ChildStarted(node=task.node, attempt=task.attempt, child=child_id, detached=detached)
    call = scripts.note(
        wf=app.keys.workflow(parent), key=child_key(child_id), event=encode_event(started)
    )
    reply = reply_code(app.retrying(lambda: app.store.scripts.run(call)))
    if reply is Reply.REBUILD:
        app.projector.rebuild(parent)
        reply = reply_code(app.retrying(lambda: app.store.scripts.run(call)))
    if reply in (Reply.TERMINAL, Reply.GONE):
        raise ChildError(f"workflow {parent} has ended: child workflow {child_id} not started")
    if reply not in (Reply.OK, Reply.DUP):
        raise ChildError(f"recording child workflow {child_id} in {parent} answered {reply}")
    link = {"workflow_id": parent, "node": task.node, "attempt": task.attempt}
    if detached:
        link["detached"] = True
    _submit(app, child_id, definition, args, link)
    log.info("child_workflow_started", workflow_id=parent, node=task.node, child=child_id)
    if not detached and app.handle(parent).status().status == CANCELLED:
        app.handle(child_id).cancel(f"its parent {parent} was cancelled")


def run_child(app: App, definition_bytes: bytes, args: dict[int, bytes]) -> Any:
    """The body of a ``Child`` node's run: start the child once, and park until it has
    ended; then its result, or ``ChildFailed``."""
    task = current_task()
    assert task is not None
    child_id = child_workflow_id(task.workflow_id, task.node, task.attempt)
    handle = app.handle(child_id)
    try:
        status = handle.status().status
    except ResultMissing as missing:
        if missing.reason != "unknown":
            raise ChildFailed(f"child workflow {child_id} is gone ({missing.reason})") from None
        definition = Definition.from_bytes(definition_bytes)
        _start(app, task, child_id, definition, args, detached=False)
        return Parked(then=lambda: _look_again(app, child_id))
    if status not in TERMINAL_STATUSES:
        return Parked(then=lambda: _look_again(app, child_id))
    try:
        return handle.get_result()
    except ResultFailure as failure:
        raise ChildFailed(f"child workflow {child_id} {failure.status}: {failure}") from None


def _submit(
    app: App, child_id: str, definition: Definition, args: dict[int, bytes], link: dict[str, Any]
) -> None:
    options = submission_options(definition, None, app.retention_ms, app.history_budget)
    options["parent"] = link
    submitted = WorkflowSubmitted(
        def_hash=definition.hash, args=args, options=options, engine_version=__version__
    )
    payload = encode_event(submitted)
    decisions = decided(definition, submitted)
    submission = Submission(child_id, definition, submitted, payload, decisions)
    app.retrying(lambda: write_workflow(app.store, app.projector, submission))


def _look_again(app: App, child_id: str) -> None:
    """Once the parked message is acknowledged: a child that ended meanwhile told a
    parent whose message was still pending (its new message was dropped as a
    duplicate): tell it again."""
    try:
        ended = app.handle(child_id).status().status in TERMINAL_STATUSES
    except ResultMissing:
        ended = False
    if ended:
        tell_parent(app, child_id)


def tell_parent(app: App, workflow_id: str) -> None:
    """After a workflow ended here: if it is a child, send its parent node's message
    again (that run records the child's outcome). Errors are logged, never raised: the
    parent's sweep sends it later anyway."""
    if not workflow_id.partition("-")[2].startswith(MARK):
        return
    try:
        history = app.history(workflow_id)
        first = history[0].event if history else None
        link = first.options.get("parent") if isinstance(first, WorkflowSubmitted) else None
        if not link:
            return
        parent = link["workflow_id"]
        if link.get("detached"):
            return  # started by a task's submit: nothing waits for it
        def_hash = app.client.hget(app.keys.idx(parent), schema.DEFINITION)
        if def_hash is None:
            return  # the parent has ended (archived): nothing waits for this child
        def_hash = def_hash.decode()
        definition = app.store.definitions.get(def_hash, parent)
        node = definition.task(link["node"])
        if not node.child:
            return  # started by a task's submit: nothing waits for it
        queue = node.options.queue
        message = encode_task_message(parent, link["node"], link["attempt"], def_hash, None)
        app.client.xadd(app.keys.queue(shard_of(parent), queue), {schema.MESSAGE_FIELD: message})
        log.debug("child_workflow_told_parent", workflow_id=workflow_id, parent=parent)
    except Exception:
        log.exception("child_workflow_tell_parent_failed", workflow_id=workflow_id)
