"""streamflow: an event-sourced workflow engine on Redis Streams."""

__version__ = "0.1.0"

from streamflow.actors import Actor, Message
from streamflow.app import App
from streamflow.audit import (
    Divergence,
    Violation,
    audit,
    export_jsonl,
    import_jsonl,
    replay,
    state_at,
)
from streamflow.canvas import Chain, Group, WithDelay
from streamflow.compose import group, pipeline
from streamflow.context import TaskContext, current_task
from streamflow.deadletters import DeadLetter, DeadLetters
from streamflow.errors import (
    DecodeError,
    DefinitionError,
    DurabilityError,
    EncodeError,
    ResultError,
    ResultFailure,
    ResultMissing,
    ResultTimeout,
    ResultTooLarge,
    StreamflowError,
    TimeLimitExceeded,
    WorkflowNotFoundError,
)
from streamflow.failures import Failure
from streamflow.handles import WorkflowHandle, WorkflowStatus
from streamflow.history import HistoryBudget
from streamflow.hooks import Hooks, TaskInfo
from streamflow.ratelimit import ConcurrentRateLimiter, RateLimitExceeded, WindowRateLimiter
from streamflow.worker import Worker

__all__ = [
    "Actor",
    "App",
    "Chain",
    "ConcurrentRateLimiter",
    "DeadLetter",
    "DeadLetters",
    "DecodeError",
    "DefinitionError",
    "Divergence",
    "DurabilityError",
    "EncodeError",
    "Failure",
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
    "StreamflowError",
    "TaskContext",
    "TaskInfo",
    "TimeLimitExceeded",
    "Violation",
    "WindowRateLimiter",
    "WithDelay",
    "Worker",
    "WorkflowHandle",
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
