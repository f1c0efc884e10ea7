"""streamflow: an event-sourced workflow engine on Redis Streams."""

from streamflow.api.actors import Actor
from streamflow.api.aio import AsyncWorkflowHandle
from streamflow.api.app import App
from streamflow.api.canvas import Chain, Group, Message, WithDelay, group, pipeline
from streamflow.api.children import Child, ChildError, ChildFailed
from streamflow.api.handles import WorkflowHandle, WorkflowStatus
from streamflow.api.signals import Signal
from streamflow.history.audit import Divergence, Violation, audit, replay, state_at
from streamflow.history.export import export_jsonl, import_jsonl
from streamflow.model.errors import (
    AgeLimitExceeded,
    DecodeError,
    DefinitionError,
    DurabilityError,
    EncodeError,
    ForkError,
    RateLimitExceeded,
    ResultError,
    ResultFailure,
    ResultMissing,
    ResultTimeout,
    ResultTooLarge,
    ResumeError,
    Retry,
    SignalError,
    SignalTimeout,
    StreamflowError,
    TimeLimitExceeded,
    WorkflowIdConflict,
    WorkflowNotFoundError,
)
from streamflow.model.failures import Failure
from streamflow.model.options import HistoryBudget
from streamflow.model.version import __version__
from streamflow.runtime.context import TaskContext, current_task
from streamflow.runtime.hooks import Hooks, TaskInfo
from streamflow.runtime.ratelimit import (
    BucketRateLimiter,
    ConcurrentRateLimiter,
    WindowRateLimiter,
)
from streamflow.runtime.worker import Worker
from streamflow.store.deadletters import DeadLetter, DeadLetters

__all__ = [
    "Actor",
    "AgeLimitExceeded",
    "App",
    "AsyncWorkflowHandle",
    "BucketRateLimiter",
    "Chain",
    "Child",
    "ChildError",
    "ChildFailed",
    "ConcurrentRateLimiter",
    "DeadLetter",
    "DeadLetters",
    "DecodeError",
    "DefinitionError",
    "Divergence",
    "DurabilityError",
    "EncodeError",
    "Failure",
    "ForkError",
    "Group",
    "HistoryBudget",
    "Hooks",
    "Message",
    "RateLimitExceeded",
    "ResultError",
    "ResultFailure",
    "ResultMissing",
    "ResultTimeout",
    "ResultTooLarge",
    "ResumeError",
    "Retry",
    "Signal",
    "SignalError",
    "SignalTimeout",
    "StreamflowError",
    "TaskContext",
    "TaskInfo",
    "TimeLimitExceeded",
    "Violation",
    "WindowRateLimiter",
    "WithDelay",
    "Worker",
    "WorkflowHandle",
    "WorkflowIdConflict",
    "WorkflowNotFoundError",
    "WorkflowStatus",
    "__version__",
    "audit",
    "current_task",
    "export_jsonl",
    "group",
    "import_jsonl",
    "pipeline",
    "replay",
    "state_at",
]
