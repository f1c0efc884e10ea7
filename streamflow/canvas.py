"""Composing messages into workflows: Chain, Group, WithDelay, and compiling them."""

from __future__ import annotations

import dataclasses
import datetime
from typing import TypeAlias

from streamflow import codec
from streamflow.actors import Message, to_ms
from streamflow.definition import NONE, BarrierNode, Definition, Node, Spec, TaskNode
from streamflow.errors import EncodeError


class _Composable:
    def __or__(self, other: Canvas) -> Chain:
        from streamflow.compose import pipeline

        return pipeline([self, other])  # type: ignore[list-item]


class Chain(_Composable):
    """Steps run one after another; each receives the previous step's result (pipe).

    ``Chain(a, b, c)`` is the same as ``a | b | c``. A chain's result is its last step's.
    """

    def __init__(self, *steps: Canvas) -> None:
        if not steps:
            raise ValueError("Chain needs at least one step (got none)")
        flat: list[Canvas] = []
        for step in steps:
            _check_canvas(step, "Chain step")
            flat.extend(step.steps if isinstance(step, Chain) else [step])
        self.steps: tuple[Canvas, ...] = tuple(flat)

    def __repr__(self) -> str:
        return f"Chain({', '.join(map(repr, self.steps))})"


class Group(_Composable):
    """Members run in parallel; the result is the list of their results in canvas order."""

    def __init__(self, *children: Canvas) -> None:
        for child in children:
            _check_canvas(child, "Group member")
        self.children: tuple[Canvas, ...] = children

    def __repr__(self) -> str:
        return f"Group({', '.join(map(repr, self.children))})"


class WithDelay(_Composable):
    """Run ``child`` only ``delay`` seconds (or a timedelta) after it becomes ready."""

    def __init__(self, child: Canvas, delay: float | datetime.timedelta) -> None:
        _check_canvas(child, "WithDelay child")
        self.child = child
        self.delay_ms = to_ms(delay, "delay")

    def __repr__(self) -> str:
        return f"WithDelay({self.child!r}, {self.delay_ms / 1000})"


class WithCallback(_Composable):
    """Run ``callbacks`` once every task of ``child`` has succeeded (a barrier in the log).

    The callbacks receive nothing piped; the value of the whole is ``child``'s.
    """

    def __init__(self, child: Canvas, *callbacks: Message) -> None:
        _check_canvas(child, "WithCallback child")
        for callback in callbacks:
            if not isinstance(callback, Message):
                raise TypeError(
                    f"a completion callback must be a Message (got {callback!r} "
                    f"of type {type(callback).__name__})"
                )
        self.child = child
        self.callbacks = callbacks

    def __repr__(self) -> str:
        return f"WithCallback({self.child!r}, {', '.join(map(repr, self.callbacks))})"


Canvas: TypeAlias = Message | Chain | Group | WithDelay | WithCallback
_CANVAS_TYPES = (Message, Chain, Group, WithDelay, WithCallback)


def _check_canvas(value: object, what: str) -> None:
    if not isinstance(value, _CANVAS_TYPES):
        raise TypeError(
            f"{what} must be a Message, Chain, Group or WithDelay "
            f"(got {value!r} of type {type(value).__name__})"
        )


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


def compile_canvas(canvas: Canvas) -> Compiled:
    """Compile a canvas into a definition and its arguments.

    Raises:
        TypeError: ``canvas`` (or a part of it) is not a canvas.
        EncodeError: an argument cannot be encoded; the message names its path.
    """
    _check_canvas(canvas, "a workflow")
    compiler = _Compiler()
    main = canvas.child if isinstance(canvas, WithCallback) else canvas
    compiler.record = main
    _, root_spec = compiler.compile(canvas, NONE, None, 0)
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
    definition = Definition(nodes=tuple(nodes), specs=tuple(compiler.specs), root_spec=root_spec)
    parts = tuple(
        Part(
            tasks=frozenset(i for i in range(start, end) if isinstance(nodes[i], TaskNode)),
            spec=spec,
        )
        for start, end, spec in compiler.parts
    )
    return Compiled(definition=definition, args=compiler.args, parts=parts)


def has_tasks(canvas: Canvas) -> bool:
    """Whether the canvas contains at least one message."""
    stack: list[Canvas] = [canvas]
    while stack:
        item = stack.pop()
        if isinstance(item, Message):
            return True
        if isinstance(item, Chain):
            stack.extend(item.steps)
        elif isinstance(item, Group):
            stack.extend(item.children)
        elif isinstance(item, WithCallback):
            return True
        else:
            stack.append(item.child)
    return False


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

    def _intern(self, spec: Spec) -> int:
        key = codec.pack(spec)
        index = self._spec_index.get(key)
        if index is None:
            index = self._spec_index[key] = len(self.specs)
            self.specs.append(spec)
        return index

    def compile(
        self, canvas: Canvas, pred: int, pipe: Spec, delay_ms: int
    ) -> tuple[list[int], Spec]:
        """Add ``canvas``'s nodes after barrier ``pred``; return its sinks and result spec.

        ``pipe`` is the spec of the input piped to its sources (None: nothing piped).
        """
        if isinstance(canvas, Message):
            return self._message(canvas, pred, pipe, delay_ms)
        if isinstance(canvas, WithDelay):
            return self.compile(canvas.child, pred, pipe, delay_ms + canvas.delay_ms)
        if isinstance(canvas, Group):
            sinks: list[int] = []
            specs: list[Spec] = []
            for child in canvas.children:
                start = len(self.tasks)
                child_sinks, child_spec = self.compile(child, pred, pipe, delay_ms)
                if canvas is self.record:
                    self.parts.append((start, len(self.tasks), child_spec))
                sinks.extend(child_sinks)
                specs.append(child_spec)
            return sinks, specs
        if isinstance(canvas, WithCallback):
            sinks, spec = self.compile(canvas.child, pred, pipe, delay_ms)
            if sinks:
                pred = self._barrier(sinks)
            ends = [self._message(cb, pred, None, 0)[0][0] for cb in canvas.callbacks]
            return ends or sinks, spec
        return self._chain(canvas, pred, pipe, delay_ms)

    def _barrier(self, sources: list[int]) -> int:
        barrier = len(self.tasks)
        self.tasks.append(BarrierNode(id=barrier, sources=tuple(sources), targets=()))
        for source in sources:
            self.succ[source] = barrier
        return barrier

    def _message(
        self, message: Message, pred: int, pipe: Spec, delay_ms: int
    ) -> tuple[list[int], Spec]:
        node = len(self.tasks)
        if message.args or message.kwargs:
            try:
                self.args[node] = codec.encode_checked(
                    [list(message.args), dict(message.kwargs)], what="args"
                )
            except EncodeError:
                path, type_name = _find_bad_argument(message)
                raise EncodeError(f"{path} of {message.actor_name}", type_name) from None
        self.tasks.append(
            TaskNode(
                id=node,
                actor=message.actor_name,
                options=message.options,
                delay_ms=delay_ms + message.delay_ms,
                pred=pred,
                succ=NONE,
                pipe=NONE if pipe is None or message.pipe_ignore else self._intern(pipe),
            )
        )
        return [node], node

    def _chain(self, chain: Chain, pred: int, pipe: Spec, delay_ms: int) -> tuple[list[int], Spec]:
        steps = chain.steps
        later_has_tasks = [False] * len(steps)
        for i in range(len(steps) - 2, -1, -1):
            later_has_tasks[i] = later_has_tasks[i + 1] or has_tasks(steps[i + 1])
        last_sinks: list[int] = []
        spec: Spec = None
        for i, step in enumerate(steps):
            start = len(self.tasks)
            sinks, spec = self.compile(step, pred, pipe, delay_ms)
            if chain is self.record:
                self.parts.append((start, len(self.tasks), spec))
            pipe = spec
            if not sinks:
                continue  # an empty step: no barrier; its [] result is piped on
            delay_ms = 0  # a chain's delay applies to its first step with tasks
            last_sinks = sinks
            if later_has_tasks[i]:
                pred = self._barrier(sinks)
        return last_sinks, spec


def _find_bad_argument(message: Message) -> tuple[str, str]:
    path, type_name = codec.find_unencodable(list(message.args), "args")
    if path != "args":
        return path, type_name
    return codec.find_unencodable(dict(message.kwargs), "kwargs")
