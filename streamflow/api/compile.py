"""Compiling a canvas into a definition (node ids in canvas order, barriers between chain
steps, result specs) and its per-workflow arguments."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from streamflow.api.canvas import (
    MAX_NESTING,
    Callback,
    Canvas,
    Chain,
    Group,
    Message,
    WithCallback,
    WithDelay,
    check_canvas,
    has_tasks,
    nesting_depth,
)
from streamflow.model import codec
from streamflow.model.definition import (
    NONE,
    ON_FAILURE,
    ON_RETRY_EXHAUSTED,
    ON_SUCCESS,
    TASK,
    WORKFLOW_ON_FAILURE,
    BarrierNode,
    Definition,
    Node,
    Spec,
    TaskNode,
)
from streamflow.model.errors import DefinitionError, EncodeError


@dataclasses.dataclass(frozen=True, slots=True)
class Part:
    """One top-level step of a chain (or member of a group) of a compiled canvas."""

    tasks: frozenset[int]
    spec: Spec


@dataclasses.dataclass(frozen=True, slots=True)
class Compiled:
    """A definition plus the per-workflow arguments of one canvas."""

    definition: Definition
    args: dict[int, bytes]
    """Per task node with arguments: ``codec.encode([args, kwargs])``."""
    parts: tuple[Part, ...] = ()
    """The top-level chain's steps or group's members (through a WithCallback)."""


def compile_canvas(canvas: Canvas, *, on_failure: Callback | None = None) -> Compiled:
    """Compile a canvas into a definition and its arguments.

    Args:
        canvas: what to run.
        on_failure: a callback run once if the workflow fails, with ``(failure,
            partial_results)``.

    Raises:
        TypeError: ``canvas`` (or a part of it) is not a canvas.
        EncodeError: an argument cannot be encoded; the message names its path.
        DefinitionError: it nests deeper than ``MAX_NESTING``.
    """
    check_canvas(canvas, "a workflow")
    depth = nesting_depth(canvas)
    if depth > MAX_NESTING:
        raise DefinitionError(
            f"the canvas nests {depth} levels deep; at most {MAX_NESTING} are allowed "
            "(each Chain, Group, WithDelay and callback is a level)"
        )
    compiler = _Compiler()
    main = canvas
    while isinstance(main, WithCallback | WithDelay):  # a run group's callbacks, a delay
        main = main.child
    compiler.record = main
    root = compiler.compile(canvas, NONE, None, 0)
    root_spec, full_spec = root.spec, root.full
    workflow_on_failure = NONE
    callback = on_failure
    if callback is not None:
        pipe = compiler.intern(full_spec)
        workflow_on_failure = compiler.callback(callback, WORKFLOW_ON_FAILURE, NONE, pipe)
    nodes: list[Node] = []
    targets: dict[int, list[int]] = {}
    for task in compiler.tasks:
        if isinstance(task, TaskNode) and task.pred != NONE:
            targets.setdefault(task.pred, []).append(task.id)
    for node in compiler.tasks:
        if isinstance(node, BarrierNode):
            node = BarrierNode(
                id=node.id, sources=node.sources, targets=tuple(targets.get(node.id, ()))
            )
        elif node.id in compiler.succ:
            node = dataclasses.replace(node, succ=compiler.succ[node.id])
        nodes.append(node)
    definition = Definition(
        nodes=tuple(nodes),
        specs=tuple(compiler.specs),
        root_spec=root_spec,
        on_failure=workflow_on_failure,
        full_spec=full_spec,
    )
    parts = tuple(
        Part(
            tasks=frozenset(
                n.id for n in nodes[start:end] if isinstance(n, TaskNode) and n.role == TASK
            ),
            spec=spec,
        )
        for start, end, spec in compiler.parts
    )
    return Compiled(definition=definition, args=compiler.args, parts=parts)


class Fragment(NamedTuple):
    """What compiling part of a canvas gives."""

    sinks: list[int]
    """Its tasks that must all succeed before whatever follows it."""
    spec: Spec
    """Its value."""
    full: Spec
    """Every task of it in canvas shape (a chain as the list of its steps)."""


class _Compiler:
    def __init__(self) -> None:
        self.tasks: list[Node] = []
        self.succ: dict[int, int] = {}
        self.specs: list[Spec] = []
        self._spec_index: dict[bytes, int] = {}
        self.args: dict[int, bytes] = {}
        self.record: Canvas | None = None
        """The canvas whose steps or members are recorded as ``parts``."""
        self.parts: list[tuple[int, int, Spec]] = []

    def intern(self, spec: Spec) -> int:
        key = codec.pack(spec)
        index = self._spec_index.get(key)
        if index is None:
            index = self._spec_index[key] = len(self.specs)
            self.specs.append(spec)
        return index

    def compile(self, canvas: Canvas, pred: int, pipe: Spec, delay_ms: int) -> Fragment:
        """Add ``canvas``'s nodes after barrier ``pred``.

        ``pipe`` is the spec of the input piped to its sources (None: nothing piped).
        """
        if isinstance(canvas, Message):
            return self._message(canvas, pred, pipe, delay_ms)
        if isinstance(canvas, WithDelay):
            return self.compile(canvas.child, pred, pipe, delay_ms + canvas.delay_ms)
        if isinstance(canvas, Group):
            sinks: list[int] = []
            specs: list[Spec] = []
            fulls: list[Spec] = []
            for child in canvas.children:
                start = len(self.tasks)
                fragment = self.compile(child, pred, pipe, delay_ms)
                if canvas is self.record:
                    self.parts.append((start, len(self.tasks), fragment.spec))
                sinks.extend(fragment.sinks)
                specs.append(fragment.spec)
                fulls.append(fragment.full)
            return Fragment(sinks, specs, fulls)
        if isinstance(canvas, WithCallback):
            inner = self.compile(canvas.child, pred, pipe, delay_ms)
            if inner.sinks:
                pred = self._barrier(inner.sinks)
            ends = [self._message(cb, pred, None, 0).sinks[0] for cb in canvas.callbacks]
            full: Spec = [inner.full, *ends] if ends else inner.full
            return Fragment(ends or inner.sinks, inner.spec, full)
        return self._chain(canvas, pred, pipe, delay_ms)

    def _barrier(self, sources: list[int]) -> int:
        barrier = len(self.tasks)
        self.tasks.append(BarrierNode(id=barrier, sources=tuple(sources), targets=()))
        for source in sources:
            self.succ[source] = barrier
        return barrier

    def _message(self, message: Message[Any], pred: int, pipe: Spec, delay_ms: int) -> Fragment:
        node = len(self.tasks)
        self._arguments(node, message)
        callbacks = [
            (callback, role)
            for callback, role in (
                (message.on_success, ON_SUCCESS),
                (message.on_failure, ON_FAILURE),
                (message.on_retry_exhausted, ON_RETRY_EXHAUSTED),
            )
            if callback is not None
        ]
        slot = {role: node + 1 + i for i, (_, role) in enumerate(callbacks)}
        self.tasks.append(
            TaskNode(
                id=node,
                actor=message.actor_name,
                options=message.options,
                delay_ms=delay_ms + message.delay_ms,
                pred=pred,
                succ=NONE,
                pipe=NONE if pipe is None or message.pipe_ignore else self.intern(pipe),
                on_success=slot.get(ON_SUCCESS, NONE),
                on_failure=slot.get(ON_FAILURE, NONE),
                on_retry_exhausted=slot.get(ON_RETRY_EXHAUSTED, NONE),
                allow_failure=message.allow_failure,
            )
        )
        for callback, role in callbacks:
            self.callback(callback, role, node)
        return Fragment([node], node, node)

    def callback(self, callback: Callback, role: int, subject: int, pipe: int = NONE) -> int:
        """Add a callback node (outside the DAG: never a root, a sink or a barrier source)."""
        node = len(self.tasks)
        self.tasks.append(
            TaskNode(
                id=node,
                actor=callback.actor_name,
                options=callback.options,
                delay_ms=0,
                pred=NONE,
                succ=NONE,
                pipe=pipe,
                role=role,
                subject=subject,
            )
        )
        return node

    def _arguments(self, node: int, message: Message[Any]) -> None:
        encoded = message_arguments(message)
        if encoded is not None:
            self.args[node] = encoded

    def _chain(self, chain: Chain[Any], pred: int, pipe: Spec, delay_ms: int) -> Fragment:
        steps = chain.steps
        later_has_tasks = [False] * len(steps)
        for i in range(len(steps) - 2, -1, -1):
            later_has_tasks[i] = later_has_tasks[i + 1] or has_tasks(steps[i + 1])
        last_sinks: list[int] = []
        spec: Spec = pipe  # an empty chain: its input goes on
        fulls: list[Spec] = []
        for i, step in enumerate(steps):
            start = len(self.tasks)
            fragment = self.compile(step, pred, pipe, delay_ms)
            if chain is self.record:
                self.parts.append((start, len(self.tasks), fragment.spec))
            spec = pipe = fragment.spec
            fulls.append(fragment.full)
            if not fragment.sinks:
                continue  # an empty step: no barrier; its [] result is piped on
            delay_ms = 0  # a chain's delay applies to its first step with tasks
            last_sinks = fragment.sinks
            if later_has_tasks[i]:
                pred = self._barrier(fragment.sinks)
        return Fragment(last_sinks, spec, fulls)


def _find_bad_argument(message: Message[Any]) -> tuple[str, str]:
    path, type_name = codec.find_unencodable(list(message.args), "args")
    if path != "args":
        return path, type_name
    return codec.find_unencodable(dict(message.kwargs), "kwargs")


def message_arguments(message: Message[Any]) -> bytes | None:
    """A message's arguments as its definition's per-workflow part (None: it has none).

    Raises:
        EncodeError: one cannot be encoded; the message names its path.
    """
    if not (message.args or message.kwargs):
        return None
    try:
        return codec.encode_checked([list(message.args), dict(message.kwargs)], what="args")
    except EncodeError:
        path, type_name = _find_bad_argument(message)
        raise EncodeError(f"{path} of {message.actor_name}", type_name) from None
