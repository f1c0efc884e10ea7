"""dramatiq-style composition: ``pipeline([...])`` and ``group([...])`` objects.

They are canvases (a pipeline is a Chain, a group a Group), compile to the same
definitions, nest freely, and become handles once ``run()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streamflow.actors import Message
from streamflow.canvas import Canvas, Chain, Compiled, Group, WithCallback, compile_canvas
from streamflow.definition import assemble
from streamflow.errors import ResultMissing
from streamflow.handles import Snapshot, WorkflowHandle, values


def _app_of(canvas: Canvas) -> Any:
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

    _handle: WorkflowHandle | None = None
    _compiled: Compiled | None = None

    def _submit(self, canvas: Canvas, app: Any) -> None:
        if self._handle is not None:
            raise RuntimeError(f"{self!r} was already run (workflow {self._handle.id})")
        app = app if app is not None else _app_of(canvas)
        self._compiled = compile_canvas(canvas)
        self._handle = app.submit(canvas)

    @property
    def handle(self) -> WorkflowHandle:
        """The workflow's handle.

        Raises:
            RuntimeError: not run yet.
        """
        if self._handle is None:
            raise RuntimeError(f"{self!r} has not been run")
        return self._handle

    @property
    def id(self) -> str:
        """The workflow id."""
        return self.handle.id

    def _snapshot(self, block: bool, timeout: float | None) -> Snapshot:
        snap = self.handle.wait(timeout) if block else self.handle.snapshot()
        if not snap.state.terminal:
            raise ResultMissing(self.handle.id, "not finished")
        return snap

    @property
    def completed_count(self) -> int:
        """How many steps (pipeline) or members (group) have completed."""
        assert self._compiled is not None
        results = self.handle.snapshot().state.results
        return sum(1 for part in self._compiled.parts if part.tasks <= results.keys())

    @property
    def completed(self) -> bool:
        """Whether the whole workflow has completed successfully."""
        return self.handle.snapshot().state.status == "completed"

    def _part_results(self, block: bool, timeout: float | None) -> list[Any]:
        snap = self._snapshot(block, timeout)
        self.handle._value(snap, None, raise_on_error=True)  # raises ResultFailure
        assert self._compiled is not None
        found = values(snap)
        return [assemble(part.spec, found) for part in self._compiled.parts]


class pipeline(Chain, _Runnable):
    """Messages (or any canvases) run one after another, each receiving the previous
    result; ``pipeline([a, b])`` is ``Chain(a, b)``."""

    def __init__(self, children: Iterable[Canvas]) -> None:
        super().__init__(*children)

    def __len__(self) -> int:
        return len(self.steps)

    def run(self, *, app: Any = None) -> pipeline:
        """Submit it (to the App of its messages, or ``app``); returns itself."""
        self._submit(self, app)
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
        return self._part_results(block, timeout)


class group(Group, _Runnable):
    """Messages (or any canvases) run in parallel; ``group([a, b])`` is ``Group(a, b)``."""

    def __init__(self, children: Iterable[Canvas]) -> None:
        super().__init__(*children)
        self._callbacks: list[Message] = []

    def __len__(self) -> int:
        return len(self.children)

    def add_completion_callback(self, message: Message) -> group:
        """Run ``message`` once, after every member succeeded (a barrier in the log)."""
        if self._handle is not None:
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

    def run(self, *, app: Any = None) -> group:
        """Submit it (to the App of its messages, or ``app``); returns itself."""
        self._submit(self.canvas(), app)
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
        self._part_results(True, timeout)
