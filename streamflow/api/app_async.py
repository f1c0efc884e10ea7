"""The App's asyncio methods: ``App`` inherits them (see ``streamflow.api.aio``)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, overload

from streamflow.api import aio
from streamflow.api.actors import Actor
from streamflow.api.aio import AsyncDeadLetters, AsyncWorkflowHandle
from streamflow.api.canvas import Canvas, Chain, Group, Message
from streamflow.api.submit import Submission
from streamflow.history.listing import WorkflowSummary, list_plan
from streamflow.model.events import Entry
from streamflow.runtime.observe import Observers
from streamflow.runtime.projector import Projector
from streamflow.runtime.resume import resume_plan, resumed_settle
from streamflow.runtime.signals import signal_plan, signalled
from streamflow.store.aio import AsyncStore
from streamflow.store.connection import Store

R = TypeVar("R")

SUBMIT_CHUNK = 500
"""Workflows ``submit_many`` (and its twin) writes per round trip."""


class AsyncMethods:
    """Every client call of the App's, for asyncio code: the same meaning, errors and
    defaults, on the running event loop's own connection pool (made at its first use
    there)."""

    store: Store
    projector: Projector
    observers: Observers
    # The App's: compiling and checking a submission (see App.submit), and closing.
    _prepare: Callable[[Canvas, str | None, Actor[Any, Any] | str | None, float | None], Submission]
    close: Callable[[], None]

    def __init__(self) -> None:
        self._faces: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncStore] = (
            weakref.WeakKeyDictionary()
        )

    @overload
    async def submit_async(
        self,
        canvas: Message[R] | Chain[R],
        *,
        workflow_id: str | None = None,
        on_failure: Actor[Any, Any] | str | None = None,
        retention: float | None = None,
    ) -> AsyncWorkflowHandle[R]: ...

    @overload
    async def submit_async(
        self,
        canvas: Group,
        *,
        workflow_id: str | None = None,
        on_failure: Actor[Any, Any] | str | None = None,
        retention: float | None = None,
    ) -> AsyncWorkflowHandle[list[Any]]: ...

    @overload
    async def submit_async(
        self,
        canvas: Canvas,
        *,
        workflow_id: str | None = None,
        on_failure: Actor[Any, Any] | str | None = None,
        retention: float | None = None,
    ) -> AsyncWorkflowHandle[Any]: ...

    async def submit_async(
        self,
        canvas: Canvas,
        *,
        workflow_id: str | None = None,
        on_failure: Actor[Any, Any] | str | None = None,
        retention: float | None = None,
    ) -> AsyncWorkflowHandle[Any]:
        """``submit`` for asyncio code: the same checks, errors and idempotence."""
        submission = self._prepare(canvas, workflow_id, on_failure, retention)
        with self.observers.submission([submission.workflow_id]):
            return await aio.submit(self._face, self.projector, submission)

    async def submit_many_async(
        self, canvases: Iterable[Canvas], *, retention: float | None = None
    ) -> list[AsyncWorkflowHandle[Any]]:
        """``submit_many`` for asyncio code."""
        submissions = [self._prepare(canvas, None, None, retention) for canvas in canvases]
        handles: list[AsyncWorkflowHandle[Any]] = []
        for start in range(0, len(submissions), SUBMIT_CHUNK):
            chunk = submissions[start : start + SUBMIT_CHUNK]
            with self.observers.submission([s.workflow_id for s in chunk]):
                handles += await aio.submit_many(self._face, self.projector, chunk)
        return handles

    async def results_async(
        self,
        handles: Sequence[AsyncWorkflowHandle[Any]],
        *,
        block: bool = True,
        timeout: float | None = None,
        raise_on_error: bool = True,
    ) -> list[Any]:
        """``results`` for asyncio code (those not ended yet are awaited together)."""
        return await aio.results(
            self._face, handles, block=block, timeout=timeout, raise_on_error=raise_on_error
        )

    async def workflows_async(
        self, status: str | None = None, limit: int = 100
    ) -> list[WorkflowSummary]:
        """``workflows`` for asyncio code."""
        return await self._face().run(list_plan(self.store, status, limit))

    async def history_async(self, workflow_id: str) -> list[Entry]:
        """``history`` for asyncio code."""
        return await self.handle_async(workflow_id).history()

    @property
    def dead_letters_async(self) -> AsyncDeadLetters:
        """``dead_letters`` for asyncio code."""
        return AsyncDeadLetters(self._face, self.store.dead_letters)

    async def signal_async(
        self, workflow_id: str, name: str, payload: Any = None, *, sender: str = ""
    ) -> bool:
        """``signal`` for asyncio code (the archive of a workflow the signal finished is
        left to its wake-up, not written from the loop)."""
        plan = signal_plan(self.projector, workflow_id, name, payload, sender)
        applied = await self._face().run(plan)
        return signalled(self.projector, workflow_id, applied, archive=False)

    async def resume_workflow_async(
        self, workflow_id: str, *, reason: str = "", by: str = ""
    ) -> list[int]:
        """``resume_workflow`` for asyncio code."""
        applied, nodes = await self._face().run(
            resume_plan(self.projector, workflow_id, reason, by)
        )
        resumed_settle(self.projector, workflow_id, applied, archive=False)
        return sorted(nodes)

    def handle_async(self, workflow_id: str) -> AsyncWorkflowHandle[Any]:
        """``handle`` for asyncio code."""
        return AsyncWorkflowHandle(self._face, self.projector, workflow_id)

    async def aclose(self) -> None:
        """Close the running event loop's connection pool and subscription, and the
        threads' pool (``close``)."""
        face = self._faces.pop(asyncio.get_running_loop(), None)
        if face is not None:
            await face.close()
        self.close()

    def _face(self) -> AsyncStore:
        """The store's face on the running event loop, made at its first use there."""
        loop = asyncio.get_running_loop()
        face = self._faces.get(loop)
        if face is None:
            face = self._faces[loop] = AsyncStore(self.store)
        return face
