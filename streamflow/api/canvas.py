"""Composing messages into workflows: Message, Chain, Group, WithDelay, WithCallback, and
dramatiq's ``pipeline`` and ``group``, which are canvases that can run themselves.

A canvas is plain data. Running one goes through the ``Submitter`` (an App) its messages
carry, and reading its results through the ``Run`` that answers: nothing here reaches up
to the App.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from typing import Any, Generic, Protocol, TypeAlias, TypeVar, overload

from streamflow.model.options import ActorOptions, to_ms

R = TypeVar("R")
"""The result of a message (its actor's return type) or of a chain (its last step's)."""


class Submitter(Protocol):
    """What runs a canvas (an App)."""

    def submit(self, canvas: Canvas) -> Run: ...


class Run(Protocol):
    """A submitted canvas, as ``pipeline`` and ``group`` read it (a WorkflowHandle)."""

    @property
    def id(self) -> str: ...

    def get_result(
        self, *, block: bool = False, timeout: float | None = None, raise_on_error: bool = True
    ) -> Any: ...

    def results_by_part(
        self, canvas: Canvas, *, block: bool = False, timeout: float | None = None
    ) -> list[Any]: ...

    def parts_completed(self, canvas: Canvas) -> int: ...

    def completed(self) -> bool: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Callback:
    """An actor named as a callback: what the definition needs of it."""

    actor_name: str
    options: ActorOptions


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Message(Generic[R]):
    """One call of an actor, ready to be placed in a canvas. Build with ``actor.message``
    (typed: ``Message[R]``, ``R`` its actor's result)."""

    actor_name: str
    options: ActorOptions
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    pipe_ignore: bool = False
    """Do not append the previous chain step's result to the arguments."""
    delay_ms: int = 0
    """Wait this long after the message becomes ready before running it."""
    allow_failure: bool = False
    """A final failure yields a ``Failure`` value in the results; the workflow goes on."""
    on_success: Callback | None = None
    """Actor run after this message succeeded, with ``(message_data, result)``."""
    on_failure: Callback | None = None
    """Actor run after this message failed for good, with ``(message_data, failure)``."""
    on_retry_exhausted: Callback | None = None
    """Actor run after this message failed for good with its retries used up, with
    ``(message_data, retry_info)``: the failure, ``retries`` and ``max_retries``."""
    app: Submitter | None = dataclasses.field(default=None, compare=False, repr=False)
    """The App its actor is registered with (used by ``send``, ``pipeline.run``)."""
    child: Canvas | None = dataclasses.field(default=None, compare=False, repr=False)
    """A ``Child`` node's canvas, as given (its compiled form is in ``args``): for the
    testing kit's simulator and reference model."""

    def __or__(self, other: Canvas) -> pipeline:
        return pipeline([self, other])


Step: TypeAlias = "Message[R] | Chain[R]"
"""A chain's last step whose result type is known."""


class _Composable:
    def __or__(self, other: Canvas) -> pipeline:
        return pipeline([self, other])  # type: ignore[list-item]


class Chain(_Composable, Generic[R]):
    """Steps run one after another; each receives the previous step's result (pipe).

    ``Chain(a, b, c)`` is the same as ``a | b | c``. A chain's result is its last step's
    (typed ``Chain[R]`` when its last step's result type is known). An empty chain does
    nothing: alone it completes at once (result None), as a step it is skipped (what it
    was piped goes on to the next step).
    """

    @overload
    def __init__(self: Chain[R], s1: Step[R], /) -> None: ...
    @overload
    def __init__(self: Chain[R], s1: Canvas, s2: Step[R], /) -> None: ...
    @overload
    def __init__(self: Chain[R], s1: Canvas, s2: Canvas, s3: Step[R], /) -> None: ...
    @overload
    def __init__(self: Chain[R], s1: Canvas, s2: Canvas, s3: Canvas, s4: Step[R], /) -> None: ...
    @overload
    def __init__(
        self: Chain[R], s1: Canvas, s2: Canvas, s3: Canvas, s4: Canvas, s5: Step[R], /
    ) -> None: ...
    @overload
    def __init__(self: Chain[Any], *steps: Canvas) -> None: ...

    def __init__(self, *steps: Canvas) -> None:
        flat: list[Canvas] = []
        for step in steps:
            check_canvas(step, "Chain step")
            flat.extend(step.steps if isinstance(step, Chain) else [step])
        self.steps: tuple[Canvas, ...] = tuple(flat)

    def __repr__(self) -> str:
        return f"Chain({', '.join(map(repr, self.steps))})"


class Group(_Composable):
    """Members run in parallel; the result is the list of their results in canvas order."""

    def __init__(self, *children: Canvas) -> None:
        for child in children:
            check_canvas(child, "Group member")
        self.children: tuple[Canvas, ...] = children

    def __repr__(self) -> str:
        return f"Group({', '.join(map(repr, self.children))})"


class WithDelay(_Composable):
    """Run ``child`` only ``delay`` seconds (or a timedelta) after it becomes ready."""

    def __init__(self, child: Canvas, delay: float | datetime.timedelta) -> None:
        check_canvas(child, "WithDelay child")
        self.child = child
        self.delay_ms = to_ms(delay, "delay", short=True)

    def __repr__(self) -> str:
        return f"WithDelay({self.child!r}, {self.delay_ms / 1000})"


class WithCallback(_Composable):
    """Run ``callbacks`` once every task of ``child`` has succeeded (a barrier in the log).

    The callbacks receive nothing piped; the value of the whole is ``child``'s.
    """

    def __init__(self, child: Canvas, *callbacks: Message[Any]) -> None:
        check_canvas(child, "WithCallback child")
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


Canvas: TypeAlias = Message[Any] | Chain[Any] | Group | WithDelay | WithCallback
CANVAS_TYPES = (Message, Chain, Group, WithDelay, WithCallback)
"""The canvas classes, for ``isinstance`` (``Canvas``, a union of generic types, cannot
be used there)."""


def check_canvas(value: object, what: str) -> None:
    if not isinstance(value, CANVAS_TYPES):
        raise TypeError(
            f"{what} must be a Message, Chain, Group or WithDelay "
            f"(got {value!r} of type {type(value).__name__})"
        )


MAX_NESTING = 100
"""How deep a canvas may nest (each Chain, Group, WithDelay and callback is a level)."""


def nesting_depth(canvas: Canvas) -> int:
    """How deep ``canvas`` nests (a lone message: 1), without recursion."""
    deepest = 0
    stack: list[tuple[Canvas, int]] = [(canvas, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, Chain):
            stack.extend((step, depth + 1) for step in item.steps)
        elif isinstance(item, Group):
            stack.extend((child, depth + 1) for child in item.children)
        elif isinstance(item, (WithDelay, WithCallback)):
            stack.append((item.child, depth + 1))
    return deepest


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


def _submitter_of(canvas: Canvas) -> Submitter:
    stack: list[Any] = [canvas]
    while stack:
        item = stack.pop()
        if isinstance(item, Message):
            if item.app is not None:
                return item.app
        elif isinstance(item, Chain):
            stack.extend(item.steps)
        elif isinstance(item, Group):
            stack.extend(item.children)
        else:
            stack.append(item.child)
            if isinstance(item, WithCallback):
                stack.extend(item.callbacks)
    raise RuntimeError("no message of this canvas belongs to an App: pass app=")


class _Runnable:
    """What pipeline and group share once run."""

    _run: Run | None = None
    _submitted: Canvas | None = None
    """What was submitted (a group with completion callbacks is wrapped)."""

    def _submit(self, canvas: Canvas, app: Submitter | None) -> None:
        if self._run is not None:
            raise RuntimeError(f"{self!r} was already run (workflow {self._run.id})")
        self._run = (app if app is not None else _submitter_of(canvas)).submit(canvas)
        self._submitted = canvas

    def _parts(self, block: bool, timeout: float | None) -> list[Any]:
        assert self._submitted is not None
        return self.handle.results_by_part(self._submitted, block=block, timeout=timeout)

    @property
    def handle(self) -> Run:
        """The workflow's handle.

        Raises:
            RuntimeError: not run yet.
        """
        if self._run is None:
            raise RuntimeError(f"{self!r} has not been run")
        return self._run

    @property
    def id(self) -> str:
        """The workflow id."""
        return self.handle.id

    @property
    def completed_count(self) -> int:
        """How many steps (pipeline) or members (group) have completed."""
        assert self._submitted is not None
        return self.handle.parts_completed(self._submitted)

    @property
    def completed(self) -> bool:
        """Whether the whole workflow has completed successfully."""
        return self.handle.completed()


class pipeline(Chain[Any], _Runnable):
    """Messages (or any canvases) run one after another, each receiving the previous
    result; ``pipeline([a, b])`` is ``Chain(a, b)``."""

    def __init__(self, children: Iterable[Canvas]) -> None:
        super().__init__(*children)

    def __len__(self) -> int:
        return len(self.steps)

    def run(
        self, *, delay: float | datetime.timedelta | None = None, app: Submitter | None = None
    ) -> pipeline:
        """Submit it (to the App of its messages, or ``app``), its first step ``delay``
        seconds (or a timedelta) from now; returns itself."""
        self._submit(self if delay is None else WithDelay(self, delay), app)
        return self

    def get_result(
        self, *, block: bool = False, timeout: float | None = None, raise_on_error: bool = True
    ) -> Any:
        """The last step's result (see ``WorkflowHandle.get_result``)."""
        return self.handle.get_result(block=block, timeout=timeout, raise_on_error=raise_on_error)

    def get_results(self, *, block: bool = False, timeout: float | None = None) -> list[Any]:
        """Every step's result, in order.

        Raises:
            ResultMissing: not finished (without ``block``).
            ResultTimeout: not finished within ``timeout``.
            ResultFailure: a step failed.
        """
        return self._parts(block, timeout)


class group(Group, _Runnable):
    """Messages (or any canvases) run in parallel; ``group([a, b])`` is ``Group(a, b)``."""

    def __init__(self, children: Iterable[Canvas]) -> None:
        super().__init__(*children)
        self._callbacks: list[Message[Any]] = []

    def __len__(self) -> int:
        return len(self.children)

    def add_completion_callback(self, message: Message[Any]) -> group:
        """Run ``message`` once, after every member succeeded (a barrier in the log)."""
        if self._run is not None:
            raise RuntimeError("add completion callbacks before run()")
        if not isinstance(message, Message):
            raise TypeError(
                f"a completion callback must be a Message (got {message!r} "
                f"of type {type(message).__name__})"
            )
        self._callbacks.append(message)
        return self

    def canvas(self) -> Canvas:
        """What is submitted: the group, wrapped with its completion callbacks."""
        return WithCallback(self, *self._callbacks) if self._callbacks else self

    def run(
        self, *, delay: float | datetime.timedelta | None = None, app: Submitter | None = None
    ) -> group:
        """Submit it (to the App of its messages, or ``app``), its members ``delay``
        seconds (or a timedelta) from now; returns itself."""
        canvas = self.canvas()
        self._submit(canvas if delay is None else WithDelay(canvas, delay), app)
        return self

    def get_results(
        self, *, block: bool = False, timeout: float | None = None, raise_on_error: bool = True
    ) -> Any:
        """The members' results, in canvas order (see ``WorkflowHandle.get_result``)."""
        return self.handle.get_result(block=block, timeout=timeout, raise_on_error=raise_on_error)

    def wait(self, *, timeout: float | None = None) -> None:
        """Block until every member (and callback) finished.

        Raises:
            ResultTimeout: not within ``timeout`` seconds.
            ResultFailure: a member failed.
        """
        self._parts(True, timeout)
