"""A task message's life in a worker, and the helpers that need no worker: what a task
receives besides its arguments, time limits."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from streamflow.model import codec, schema
from streamflow.model.definition import (
    MESSAGE_CALLBACKS,
    NONE,
    ON_RETRY_EXHAUSTED,
    ON_SUCCESS,
    WORKFLOW_ON_FAILURE,
    Definition,
    TaskNode,
    assemble,
)
from streamflow.model.errors import TimeLimitExceeded
from streamflow.model.events import TaskFailed, TaskSucceeded, WorkflowFailed, decode_event
from streamflow.model.failures import Failure, retry_info
from streamflow.model.options import ActorOptions
from streamflow.runtime.context import TaskContext, set_current
from streamflow.runtime.hooks import TaskInfo


class Runnable(Protocol):
    """What a worker needs of an actor (``streamflow.Actor`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def fn(self) -> Callable[..., Any]: ...

    @property
    def options(self) -> ActorOptions: ...

    @property
    def is_async(self) -> bool: ...

    @property
    def throws(self) -> tuple[type[BaseException], ...]: ...

    @property
    def retry_when(self) -> Callable[[int, BaseException], bool] | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Parked:
    """What a body returns to end its run without an outcome: the message is
    acknowledged and the attempt stays started, until a new message of it (sent when
    what it waits for is done, or by the sweep) runs the body again. ``then`` runs
    once the message is acknowledged: a last look, for what ended meanwhile (a new
    message sent before the acknowledgement would have been dropped as a duplicate)."""

    then: Callable[[], None] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class UnknownActor:
    """Stands for an actor no worker here knows (its task fails as poison)."""

    name: str
    options: ActorOptions
    fn: Callable[..., Any] = print
    is_async: bool = False
    throws: tuple[type[BaseException], ...] = ()
    retry_when: Callable[[int, BaseException], bool] | None = None


@dataclasses.dataclass(slots=True, kw_only=True)
class Outcome:
    """An attempt's end, as a worker hands it over."""

    workflow_id: str
    node: int
    attempt: int
    queue_key: str
    msg_id: str
    """The task message that ran it (acknowledged once the outcome is projected)."""
    definition: Definition
    task: TaskNode
    event: TaskSucceeded | TaskFailed
    blob: bytes = b""
    """An out-of-line result's encoding, stored with the outcome."""


@dataclasses.dataclass(slots=True)
class Job:
    """One delivered task message, from its start to its acknowledgement."""

    queue_key: str
    msg_id: str
    data: bytes
    workflow_id: str
    node: int
    attempt: int
    definition: Definition
    task: TaskNode
    actor: Runnable
    start_seq: int = 0
    args_blob: bytes | None = None
    inputs: list[Any] = dataclasses.field(default_factory=list)
    """Appended to the task's own arguments: its piped input, or a callback's data."""
    context: TaskContext | None = None
    """What ``current_task()`` returns inside the body."""
    future: Future[Any] | None = None
    """An async body's future (cancelled when its workflow is)."""
    info: TaskInfo | None = None
    """What hooks were told about this task."""
    blob: bytes = b""
    """An out-of-line result's encoding, stored with the outcome."""
    started: float = 0.0
    retry_base: int = 0
    """Attempts the node had before its workflow was last resumed (its retries count
    from there)."""
    taken_from: str = ""
    """The consumer this message was taken over from (it stopped beating), if any."""
    taken_ms: int = 0
    """The Redis time it was taken over."""
    lone: bool = False
    """A lone task run at once: its start is recorded only if it runs long (or with
    its outcome, in one step: ``runtime.lone``)."""
    lone_message: bool = False
    """Its message is a lone task's (``lone`` only if read for the first time)."""
    start_recorded: bool = False
    """With ``lone``: TaskStarted was recorded (it then ends the ordinary way)."""
    ended: bool = False
    """With ``lone``: its body ended (its start is no longer recorded by the watch)."""
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    """With ``lone``: held while its start is recorded, and while its end is decided."""

    def outcome(self, event: TaskSucceeded | TaskFailed) -> Outcome:
        """Its attempt's end, as the recorder takes it."""
        return Outcome(
            workflow_id=self.workflow_id,
            node=self.node,
            attempt=self.attempt,
            queue_key=self.queue_key,
            msg_id=self.msg_id,
            definition=self.definition,
            task=self.task,
            event=event,
            blob=self.blob,
        )


def input_fields(definition: Definition, task: TaskNode) -> list[str]:
    """Index fields naming what a task receives besides its own arguments."""
    if task.role in MESSAGE_CALLBACKS:
        outcome = schema.RESULT if task.role == ON_SUCCESS else schema.FAILURE
        return [f"{schema.ARGS}{task.subject}", f"{outcome}{task.subject}"]
    leaves = definition.pipe_leaves(task.id)
    fields = [f"{schema.RESULT}{leaf}" for leaf in leaves]
    return [schema.END, *fields] if task.role == WORKFLOW_ON_FAILURE else fields


def task_inputs(job: Job, values: list[Any], resolve: Callable[[TaskSucceeded], Any]) -> list[Any]:
    """The values ``_input_fields`` named, decoded into the task's extra arguments
    (``resolve`` gives a success's result, fetching it if stored out of line)."""
    definition, task = job.definition, job.task
    if task.role in MESSAGE_CALLBACKS:
        subject = definition.task(task.subject)
        args, kwargs = codec.decode(values[0]) if values[0] else ([], {})
        data = {
            "workflow_id": job.workflow_id,
            "node": subject.id,
            "actor_name": subject.actor,
            "args": args,
            "kwargs": kwargs,
        }
        outcome = decode_event(values[1])
        if isinstance(outcome, TaskSucceeded):
            return [data, resolve(outcome)]
        assert isinstance(outcome, TaskFailed)
        failure = Failure.from_event(outcome, subject.actor).to_dict()
        if task.role == ON_RETRY_EXHAUSTED:
            failure = retry_info(failure, outcome.attempt, subject.options.max_retries)
        return [data, failure]
    extra: list[Any] = []
    if task.role == WORKFLOW_ON_FAILURE:
        end = decode_event(values[0]) if values[0] else None
        extra.append(end.error if isinstance(end, WorkflowFailed) else {})
        values = values[1:]
    if task.pipe == NONE:
        return extra
    found: dict[int, Any] = {}
    for leaf, value in zip(definition.pipe_leaves(task.id), values, strict=True):
        if value is False or value is None:
            found[leaf] = None  # partial results: nothing yet
            continue
        event = decode_event(value)
        if isinstance(event, TaskSucceeded):
            found[leaf] = resolve(event)
        elif isinstance(event, TaskFailed):
            found[leaf] = Failure.from_event(event, definition.task(leaf).actor)
    return [*extra, assemble(definition.specs[task.pipe], found)]


async def in_context(job: Job, coroutine: Any) -> Any:
    """Run an async body with ``current_task()`` set and its time limit applied (a
    ``TimeoutError`` of the body's own is not a time limit)."""
    set_current(job.context)
    limit_ms = job.task.options.time_limit_ms
    if not limit_ms:
        return await coroutine
    scope = asyncio.timeout(limit_ms / 1000)
    try:
        async with scope:
            return await coroutine
    except TimeoutError:
        if scope.expired():
            raise TimeLimitExceeded(f"{job.actor.name} ran longer than {limit_ms} ms") from None
        raise
