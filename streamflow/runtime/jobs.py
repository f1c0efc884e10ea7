"""A task message's life in a worker, and the helpers that need no worker: what a task
receives besides its arguments, time limits."""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from streamflow.model import codec
from streamflow.model.definition import (
    NONE,
    ON_FAILURE,
    ON_SUCCESS,
    WORKFLOW_ON_FAILURE,
    Definition,
    TaskNode,
    assemble,
)
from streamflow.model.events import TaskFailed, TaskSucceeded, WorkflowFailed, decode_event
from streamflow.model.failures import Failure
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
class UnknownActor:
    """Stands for an actor no worker here knows (its task fails as poison)."""

    name: str
    options: ActorOptions
    fn: Callable[..., Any] = print
    is_async: bool = False
    throws: tuple[type[BaseException], ...] = ()
    retry_when: Callable[[int, BaseException], bool] | None = None


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


def input_fields(definition: Definition, task: TaskNode) -> list[str]:
    """Index fields naming what a task receives besides its own arguments."""
    if task.role in (ON_SUCCESS, ON_FAILURE):
        outcome = "ok" if task.role == ON_SUCCESS else "ko"
        return [f"x:{task.subject}", f"{outcome}:{task.subject}"]
    leaves = definition.pipe_leaves(task.id)
    fields = [f"ok:{leaf}" for leaf in leaves]
    return ["end", *fields] if task.role == WORKFLOW_ON_FAILURE else fields


def task_inputs(job: Job, values: list[Any], resolve: Callable[[TaskSucceeded], Any]) -> list[Any]:
    """The values ``_input_fields`` named, decoded into the task's extra arguments
    (``resolve`` gives a success's result, fetching it if stored out of line)."""
    definition, task = job.definition, job.task
    if task.role in (ON_SUCCESS, ON_FAILURE):
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
        return [data, Failure.from_event(outcome, subject.actor).to_dict()]
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
    """Run an async body with ``current_task()`` set and its time limit applied."""
    set_current(job.context)
    limit_ms = job.task.options.time_limit_ms
    if limit_ms:
        return await asyncio.wait_for(coroutine, limit_ms / 1000)
    return await coroutine


def raise_in_thread(ident: int, exc_type: type[BaseException]) -> None:
    """Raise ``exc_type`` in thread ``ident`` at its next bytecode (as dramatiq does)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))
