"""The exception hierarchy: every error raised by streamflow derives from StreamflowError."""

from __future__ import annotations

import datetime

from streamflow.model.options import to_ms


class StreamflowError(Exception):
    """Root of every error raised by streamflow."""


class EncodeError(StreamflowError, TypeError):
    """A value cannot be encoded (msgpack only carries plain data).

    Attributes:
        path: where the value sits, e.g. ``args[1] of add``.
        type_name: the type that could not be encoded.
    """

    def __init__(self, path: str, type_name: str) -> None:
        super().__init__(f"{path}: object of type {type_name} cannot be encoded")
        self.path = path
        self.type_name = type_name


class DecodeError(StreamflowError, ValueError):
    """Bytes that are not a valid streamflow encoding.

    Attributes:
        data: the offending bytes, intact.
    """

    def __init__(self, message: str, data: bytes) -> None:
        super().__init__(message)
        self.data = data


class DefinitionError(StreamflowError, ValueError):
    """A canvas that cannot be compiled, or a definition that cannot be found."""


class WorkflowIdConflict(StreamflowError, ValueError):
    """A submit reused the id of a workflow with another canvas or other arguments (the
    same canvas and arguments under the same id are an idempotent retry)."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(
            f"workflow id {workflow_id!r} is taken by a workflow with another canvas or "
            "other arguments; submit this one under a new id (app.new_workflow_id())"
        )
        self.workflow_id = workflow_id


class WorkflowNotFoundError(StreamflowError, LookupError):
    """No workflow with this id exists (neither a live log nor an archive)."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"no workflow with id {workflow_id!r}")
        self.workflow_id = workflow_id


class ResultError(StreamflowError):
    """A result could not be read (not there, not in time, or a failure)."""


class ResultMissing(ResultError, LookupError):
    """There is no result to read: not finished yet, expired, or never submitted.

    Attributes:
        workflow_id: the workflow.
        reason: ``"not finished"``, ``"expired"`` or ``"unknown"``.
    """

    def __init__(self, workflow_id: str, reason: str) -> None:
        super().__init__(f"no result for workflow {workflow_id}: {reason}")
        self.workflow_id = workflow_id
        self.reason = reason


class ResultTimeout(ResultError, TimeoutError):
    """The workflow did not finish within the timeout given to a blocking read."""

    def __init__(self, workflow_id: str, timeout_s: float) -> None:
        super().__init__(f"workflow {workflow_id} did not finish within {timeout_s} s")
        self.workflow_id = workflow_id
        self.timeout_s = timeout_s


class ResultFailure(ResultError):
    """The workflow ended without a result: a node failed for good, or it was cancelled.

    Attributes:
        workflow_id: the workflow.
        status: ``"failed"`` or ``"cancelled"``.
        error: the failure as plain data: ``type``, ``message``, ``traceback``, ``actor``,
            ``node``, ``attempt`` (or ``reason`` for a cancellation).
    """

    def __init__(self, workflow_id: str, status: str, error: dict[str, object]) -> None:
        detail = error.get("message") or error.get("reason") or ""
        kind = error.get("type", "")
        super().__init__(f"workflow {workflow_id} {status}: {kind} {detail}".rstrip())
        self.workflow_id = workflow_id
        self.status = status
        self.error = error

    @property
    def actor(self) -> object:
        return self.error.get("actor")

    @property
    def node(self) -> object:
        return self.error.get("node")

    @property
    def attempt(self) -> object:
        return self.error.get("attempt")

    @property
    def exception_type(self) -> object:
        return self.error.get("type")

    @property
    def traceback(self) -> object:
        return self.error.get("traceback")


class TimeLimitExceeded(BaseException):
    """A task ran longer than its actor's ``time_limit``; recorded as its failure.

    Raised inside the task's own thread (a sync body) or its asyncio task (an async one).
    Like ``KeyboardInterrupt`` it derives from ``BaseException``, not ``StreamflowError``:
    a body's ``except Exception`` cannot swallow it.
    """


class AgeLimitExceeded(StreamflowError):
    """A message waited in its queue longer than its ``max_age``: it was not run, and
    its task fails with this error (no retry: a later run would be later still)."""


class ResultTooLarge(StreamflowError):
    """A task's result exceeds the hard size limit; the task fails with this error."""


class DurabilityError(StreamflowError):
    """Fewer replicas than required confirmed a write in time (``durability="replicated"``).

    The write happened on the primary; nothing is acknowledged as durable. Retrying is
    safe: every write is idempotent.
    """

    def __init__(self, required: int, confirmed: int, timeout_ms: int) -> None:
        super().__init__(
            f"{confirmed} of {required} replicas confirmed the write within {timeout_ms} ms"
        )
        self.required = required
        self.confirmed = confirmed


class ScriptError(StreamflowError):
    """A Lua script answered something the shell does not understand."""


class RateLimitExceeded(StreamflowError):
    """No slot was free; inside an actor: the task is retried later."""

    def __init__(self, key: str, limit: int) -> None:
        super().__init__(f"rate limit {key!r} exceeded ({limit} at most)")
        self.key = key
        self.limit = limit


class Retry(StreamflowError):
    """Raised by an actor's body: run the task again, ``delay`` seconds (or a timedelta)
    after this attempt (default: the actor's backoff). It is a failed attempt like any
    other, counted against ``max_retries`` (with the default 0 it fails the task: give
    the actor, or the message, retries); the delay is recorded in its ``TaskFailed``.

    Raises:
        ValueError: a delay that is not a non-negative duration.
    """

    def __init__(
        self, message: str = "", *, delay: float | datetime.timedelta | None = None
    ) -> None:
        super().__init__(message or "a retry was asked for")
        self.delay_ms = None if delay is None else to_ms(delay, "delay", short=True)


class SignalTimeout(StreamflowError):
    """A signal node's wait ended before its signal was received; recorded as the
    node's failure (then its retries and failure policy apply)."""


class SignalError(StreamflowError, ValueError):
    """A signal that cannot be delivered: the workflow waits for no signal of that
    name, has ended, or the payload cannot be kept."""


class ResumeError(StreamflowError, ValueError):
    """A workflow that cannot be resumed: unknown, or not failed."""


class ForkError(StreamflowError, ValueError):
    """A workflow that cannot be forked: unknown, or no such task node."""
