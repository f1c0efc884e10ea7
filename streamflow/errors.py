"""The exception hierarchy: every error raised by streamflow derives from StreamflowError."""

from __future__ import annotations


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


class WorkflowNotFoundError(StreamflowError, LookupError):
    """No workflow with this id exists (neither a live log nor an archive)."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"no workflow with id {workflow_id!r}")
        self.workflow_id = workflow_id


class WorkflowFailedError(StreamflowError):
    """The workflow ended without a result (a node failed for good, or it was cancelled).

    Attributes:
        workflow_id: the workflow.
        status: ``"failed"`` or ``"cancelled"``.
        error: the recorded error data (type, message, traceback, node, attempt), or the reason.
    """

    def __init__(self, workflow_id: str, status: str, error: dict[str, object]) -> None:
        detail = error.get("message") or error.get("reason") or ""
        super().__init__(f"workflow {workflow_id} {status}: {error.get('type', '')} {detail}")
        self.workflow_id = workflow_id
        self.status = status
        self.error = error


class WorkflowTimeoutError(StreamflowError, TimeoutError):
    """The workflow did not finish within the timeout given to ``result``."""

    def __init__(self, workflow_id: str, timeout_s: float) -> None:
        super().__init__(f"workflow {workflow_id} did not finish within {timeout_s} s")
        self.workflow_id = workflow_id
        self.timeout_s = timeout_s


class ScriptError(StreamflowError):
    """A Lua script answered something the shell does not understand."""
