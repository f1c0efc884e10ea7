"""The simulator's workers running task bodies: arguments and inputs as a worker gives
them, the body (or a planned failure), and the outcome event with the retry policy's
decision."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from streamflow.api.actors import Actor
from streamflow.model import codec
from streamflow.model.definition import (
    MESSAGE_CALLBACKS,
    NONE,
    ON_RETRY_EXHAUSTED,
    WORKFLOW_ON_FAILURE,
    Definition,
    TaskNode,
    assemble,
)
from streamflow.model.events import Entry, TaskFailed, TaskSucceeded, WorkflowFailed
from streamflow.model.failures import Failure, error_data, retry_info
from streamflow.model.retry import next_attempt
from streamflow.model.signals import timed_out
from streamflow.model.state import State
from streamflow.runtime.context import TaskContext, reset_current, set_current

WORKFLOW_ID = "sim"
"""The workflow id simulated tasks see in ``current_task()`` and callback data."""


class SimulatedFailure(Exception):
    """Raised in place of a task body by a ``fail_until`` outcome plan."""


class Bodies:
    """Runs the task bodies of ``definition`` with ``actors``; attempts 1..k of a node
    in ``fail_until`` raise ``SimulatedFailure`` instead."""

    def __init__(
        self,
        definition: Definition,
        actors: Mapping[str, Actor[..., Any]],
        fail_until: Mapping[int, int],
    ) -> None:
        self.definition = definition
        self.actors = actors
        self.fail_until = fail_until

    def _inputs(self, task: TaskNode, idx: State, log: list[Entry]) -> list[Any]:
        """What the task receives after its own arguments (as ``jobs.task_inputs``)."""
        d, idx = self.definition, idx
        if task.role in MESSAGE_CALLBACKS:
            subject = d.task(task.subject)
            args, kwargs = (
                codec.decode(idx.args[subject.id]) if subject.id in idx.args else ([], {})
            )
            data = {
                "workflow_id": WORKFLOW_ID,
                "node": subject.id,
                "actor_name": subject.actor,
                "args": args,
                "kwargs": kwargs,
            }
            if subject.id in idx.results:
                return [data, idx.results[subject.id]]
            failure = self._failure_value(subject.id, idx)
            if task.role == ON_RETRY_EXHAUSTED:
                info = retry_info(failure.to_dict(), failure.attempt, subject.options.max_retries)
                return [data, info]
            return [data, failure.to_dict()]
        extra: list[Any] = []
        if task.role == WORKFLOW_ON_FAILURE:
            ends = [e.event for e in log if isinstance(e.event, WorkflowFailed)]
            extra.append(ends[0].error if ends else {})
        if task.pipe == NONE:
            return extra
        found = {leaf: self.value(leaf, idx) for leaf in d.pipe_leaves(task.id)}
        return [*extra, assemble(d.specs[task.pipe], found)]

    def _failure_value(self, node: int, idx: State) -> Failure:
        error = idx.failures[node]
        return Failure(
            actor=self.definition.task(node).actor,
            node=node,
            attempt=idx.attempt.get(node, 1),
            type=str(error.get("type", "")),
            message=str(error.get("message", "")),
            traceback=str(error.get("traceback", "")),
        )

    def value(self, node: int, idx: State) -> Any:
        """A task's value: its result, a ``Failure`` if it failed for good, else None."""
        if node in idx.results:
            return idx.results[node]
        if node in idx.failures:
            return self._failure_value(node, idx)
        return None

    def run(
        self, node: int, attempt: int, start_seq: int, idx: State, log: list[Entry]
    ) -> TaskSucceeded | TaskFailed:
        """What the worker does with a RUN: arguments, inputs, body, outcome event."""
        task = self.definition.task(node)
        if task.signal is not None:  # its message is its timeout
            return self._failure(None, task, attempt, start_seq, timed_out(task), idx)
        actor = self.actors[task.actor]
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        blob = idx.args.get(node)
        if blob:
            args, kwargs = codec.decode(blob)
        args = [*args, *self._inputs(task, idx, log)]
        context = TaskContext(workflow_id=WORKFLOW_ID, node=node, attempt=attempt, actor=actor.name)
        token = set_current(context)
        try:
            if attempt <= self.fail_until.get(node, 0):
                raise SimulatedFailure(f"attempt {attempt} of node {node} fails by plan")
            result = actor.fn(*args, **kwargs)
            if actor.is_async:
                result = asyncio.run(result)
            data = codec.encode_checked(result, what=f"result of {actor.name}")
        except Exception as exc:
            return self._failure(actor, task, attempt, start_seq, exc, idx)
        finally:
            reset_current(token)
        # The log holds what the codec gives back (a tuple comes back as a list).
        return TaskSucceeded(node=node, attempt=attempt, result=codec.decode(data), cause=start_seq)

    def failure(
        self, node: int, attempt: int, cause: int, exc: Exception, idx: State
    ) -> TaskFailed:
        """The outcome of a built-in run (a ``Child`` node's) that raised ``exc``."""
        return self._failure(None, self.definition.task(node), attempt, cause, exc, idx)

    def _failure(
        self,
        actor: Actor[..., Any] | None,
        task: TaskNode,
        attempt: int,
        cause: int,
        exc: Exception,
        idx: State,
    ) -> TaskFailed:
        """The worker's retry policy (``next_attempt``), without jitter: the longest delay
        it could draw (``actor`` None: a signal node's timeout)."""
        retry_when = actor.retry_when if actor is not None else None
        tries = attempt - idx.retry_base.get(task.id, 0)  # since the last resume

        def ask() -> bool:
            assert retry_when is not None
            return bool(retry_when(tries - 1, exc))

        retry = next_attempt(
            attempt=tries,
            options=task.options,
            error=exc,
            throws=actor.throws if actor is not None else (),
            retry_when=ask if retry_when is not None else None,
        )
        return TaskFailed(
            node=task.id,
            attempt=attempt,
            error=error_data(exc),
            retry_delay_ms=retry.delay_ms,
            later=retry.later,
            exhausted=retry.exhausted,
            cause=cause,
        )
