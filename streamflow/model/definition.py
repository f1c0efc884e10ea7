"""The compiled DAG of a workflow: task nodes, barrier nodes, result specs, content hash.

Node ids are list positions, assigned in canvas order (depth first), so the same canvas
always compiles to the same definition and hash. A task has at most one predecessor (a
barrier) and at most one successor (a barrier); a barrier has many sources and targets.
A *spec* is a tree whose leaves are task node ids: ``int`` for one result, ``list`` for a
group (``[]`` for an empty one); results are assembled from it, never by scanning a log.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cached_property
from typing import Any, TypeAlias

from streamflow.model import codec
from streamflow.model.errors import DecodeError
from streamflow.model.options import ActorOptions

Spec: TypeAlias = int | list["Spec"] | None
FORMAT = 1
NONE = -1

TASK = 0
"""Role of a task of the canvas itself."""
ON_SUCCESS = 1
"""Role of a message's on_success callback: runs after its subject succeeded."""
ON_FAILURE = 2
"""Role of a message's on_failure callback: runs after its subject failed for good."""
WORKFLOW_ON_FAILURE = 3
"""Role of the workflow's on_failure: runs once, after the workflow failed."""
ON_RETRY_EXHAUSTED = 4
"""Role of a message's on_retry_exhausted callback: runs after its subject failed for
good because its retries were used up (``TaskFailed.exhausted``)."""
MESSAGE_CALLBACKS = (ON_SUCCESS, ON_FAILURE, ON_RETRY_EXHAUSTED)
"""The roles of callbacks that report on one message (``subject``)."""
CHILD_ACTOR = "@child"
"""The actor of a child-workflow node (``Child(canvas)``): its run submits the child
workflow (once: its id is derived from the node's attempt) and parks; the child's end
sends the node's message again, and that run records the child's outcome as the node's."""
SIGNAL_ACTOR = "@signal:"
"""How the actor of a signal node begins (the signal's name follows): no worker runs
such a node; it succeeds when its signal is received (``SignalReceived``), and its
message, sent only with a timeout and due when the timeout ends, fails it."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskNode:
    id: int
    actor: str
    options: ActorOptions
    delay_ms: int
    """Delay before the first attempt, once the node is ready."""
    pred: int
    """Barrier that must release first, or NONE for a root."""
    succ: int
    """Barrier this task is a source of, or NONE for a sink of the whole workflow."""
    pipe: int
    """Index into ``Definition.specs`` of the piped input, or NONE."""
    role: int = TASK
    """TASK, or the kind of callback this node is (callbacks sit outside the DAG)."""
    subject: int = NONE
    """For a message callback: the task it reports on."""
    on_success: int = NONE
    """Callback node run after this task succeeded."""
    on_failure: int = NONE
    """Callback node run after this task failed for good."""
    on_retry_exhausted: int = NONE
    """Callback node run after this task failed for good with its retries used up."""
    allow_failure: bool = False
    """A final failure yields a Failure value and the workflow goes on."""

    @property
    def finalizer(self) -> bool:
        """Callbacks may still run after the workflow has ended."""
        return self.role != TASK

    @property
    def child(self) -> bool:
        """Whether this node runs a child workflow and takes its outcome."""
        return self.actor == CHILD_ACTOR

    @property
    def signal(self) -> str | None:
        """The name of the signal this node waits for, or None (a task a worker runs)."""
        if self.actor.startswith(SIGNAL_ACTOR):
            return self.actor[len(SIGNAL_ACTOR) :]
        return None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BarrierNode:
    id: int
    sources: tuple[int, ...]
    """Tasks that must all succeed before the barrier releases."""
    targets: tuple[int, ...]
    """Tasks enqueued when it releases."""


Node: TypeAlias = TaskNode | BarrierNode


@dataclasses.dataclass(frozen=True, kw_only=True)
class Definition:
    """An immutable, content-addressed workflow shape (per-workflow arguments live elsewhere)."""

    nodes: tuple[Node, ...]
    specs: tuple[Spec, ...]
    """Piped-input specs, shared by every task that receives the same input."""
    root_spec: Spec
    """The workflow's result."""
    on_failure: int = NONE
    """The workflow's on_failure node, or NONE."""
    full_spec: Spec = None
    """Every task's result in canvas shape, a chain as the list of its steps (for
    partial results)."""

    @cached_property
    def roots(self) -> tuple[int, ...]:
        """Tasks enqueued at submit."""
        return tuple(
            n.id
            for n in self.nodes
            if isinstance(n, TaskNode) and n.pred == NONE and n.role == TASK
        )

    @cached_property
    def sinks(self) -> tuple[int, ...]:
        """Tasks whose success, all together, completes the workflow."""
        return tuple(
            n.id
            for n in self.nodes
            if isinstance(n, TaskNode) and n.succ == NONE and n.role == TASK
        )

    @cached_property
    def task_count(self) -> int:
        """Tasks of the canvas (callbacks not counted)."""
        return sum(1 for n in self.nodes if isinstance(n, TaskNode) and n.role == TASK)

    @cached_property
    def signals(self) -> dict[str, tuple[int, ...]]:
        """Signal name -> the nodes waiting for it."""
        found: dict[str, list[int]] = {}
        for n in self.nodes:
            if isinstance(n, TaskNode) and n.signal is not None:
                found.setdefault(n.signal, []).append(n.id)
        return {name: tuple(nodes) for name, nodes in found.items()}

    @cached_property
    def callbacks(self) -> tuple[int, ...]:
        """Callback nodes (message and workflow callbacks)."""
        return tuple(n.id for n in self.nodes if isinstance(n, TaskNode) and n.role != TASK)

    @cached_property
    def edge_count(self) -> int:
        """Edges of the DAG: barrier sources plus barrier targets."""
        return sum(
            len(n.sources) + len(n.targets) for n in self.nodes if isinstance(n, BarrierNode)
        )

    def task(self, node: int) -> TaskNode:
        found = self.nodes[node]
        assert isinstance(found, TaskNode), f"node {node} is not a task"
        return found

    def barrier(self, node: int) -> BarrierNode:
        found = self.nodes[node]
        assert isinstance(found, BarrierNode), f"node {node} is not a barrier"
        return found

    def pipe_leaves(self, node: int) -> list[int]:
        """Tasks whose results make up ``node``'s piped input, in canvas order."""
        pipe = self.task(node).pipe
        return [] if pipe == NONE else spec_leaves(self.specs[pipe])

    @cached_property
    def to_bytes(self) -> bytes:
        """The stored form (codec-encoded, lz4-compressed when large)."""
        profiles: dict[ActorOptions, int] = {}
        rows: list[list[Any]] = []
        for n in self.nodes:
            if isinstance(n, TaskNode):
                key = n.options
                index = profiles.setdefault(key, len(profiles))
                rows.append(
                    [
                        0,
                        n.actor,
                        index,
                        n.delay_ms,
                        n.pred,
                        n.succ,
                        n.pipe,
                        n.role,
                        n.subject,
                        n.on_success,
                        n.on_failure,
                        n.allow_failure,
                        # Only when set: a definition without one keeps its bytes.
                        *([] if n.on_retry_exhausted == NONE else [n.on_retry_exhausted]),
                    ]
                )
            else:
                rows.append([1, list(n.sources), list(n.targets)])
        encoded_profiles = [
            [
                p.queue,
                p.max_retries,
                p.min_backoff_ms,
                p.max_backoff_ms,
                p.time_limit_ms,
                p.result_ttl_ms,
                # Only when set: a definition without them keeps its bytes (and hash).
                *_optional(p.max_age_ms, p.priority),
            ]
            for p in profiles
        ]
        return codec.encode(
            [
                FORMAT,
                encoded_profiles,
                rows,
                list(self.specs),
                self.root_spec,
                self.on_failure,
                self.full_spec,
            ]
        )

    @cached_property
    def hash(self) -> str:
        """Content hash (hex), the definition's key."""
        return hashlib.blake2b(self.to_bytes, digest_size=16).hexdigest()

    @classmethod
    def from_bytes(cls, data: bytes) -> Definition:
        """Inverse of ``to_bytes``.

        Raises:
            DecodeError: not a definition of a known format.
        """
        raw = codec.decode(data)
        if not isinstance(raw, list) or len(raw) != 7 or raw[0] != FORMAT:
            raise DecodeError("not a streamflow definition", data)
        _, encoded_profiles, rows, specs, root_spec, on_failure, full_spec = raw
        profiles = [
            ActorOptions(
                queue=q,
                max_retries=r,
                min_backoff_ms=lo,
                max_backoff_ms=hi,
                time_limit_ms=tl,
                result_ttl_ms=ttl,
                max_age_ms=more[0] if more else None,
                priority=more[1] if len(more) > 1 else 0,
            )
            for q, r, lo, hi, tl, ttl, *more in encoded_profiles
        ]
        nodes: list[Node] = []
        for i, row in enumerate(rows):
            if row[0] == 0:
                _, actor, index, delay_ms, pred, succ, pipe, *extra = row
                role, subject, on_success, on_fail, allow_failure, *more = extra
                nodes.append(
                    TaskNode(
                        id=i,
                        actor=actor,
                        options=profiles[index],
                        delay_ms=delay_ms,
                        pred=pred,
                        succ=succ,
                        pipe=pipe,
                        role=role,
                        subject=subject,
                        on_success=on_success,
                        on_failure=on_fail,
                        on_retry_exhausted=more[0] if more else NONE,
                        allow_failure=allow_failure,
                    )
                )
            else:
                nodes.append(BarrierNode(id=i, sources=tuple(row[1]), targets=tuple(row[2])))
        return cls(
            nodes=tuple(nodes),
            specs=tuple(specs),
            root_spec=root_spec,
            on_failure=on_failure,
            full_spec=full_spec,
        )


def spec_leaves(spec: Spec) -> list[int]:
    """Leaves of a spec in canvas order."""
    out: list[int] = []
    stack: list[Spec] = [spec]
    while stack:
        item = stack.pop()
        if isinstance(item, int):
            out.append(item)
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return out


def assemble(spec: Spec, results: dict[int, Any]) -> Any:
    """Build the value a spec describes from per-task results."""
    if isinstance(spec, int):
        return results[spec]
    if spec is None:
        return None
    return [assemble(item, results) for item in spec]


def _optional(max_age_ms: int | None, priority: int) -> list[Any]:
    """A profile's trailing fields, only as far as one is set."""
    if priority:
        return [max_age_ms, priority]
    return [] if max_age_ms is None else [max_age_ms]
