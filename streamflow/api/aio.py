"""The client's asyncio face: submitting and handles whose calls are coroutines, with
the same meaning, errors and defaults as the threads' face. Both carry out the same
plans (``streamflow.api.reads``, ``streamflow.api.submit``); only the I/O differs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Generic, TypeVar

from streamflow.api.canvas import Canvas
from streamflow.api.compile import compile_canvas
from streamflow.api.follow import follow_async, follow_plan
from streamflow.api.reads import (
    Snapshot,
    WorkflowStatus,
    completed_parts,
    ended_values_plan,
    finished,
    history_plan,
    if_ended_plan,
    partial_plan,
    snapshot_plan,
    status_plan,
    value_plan,
    values_plan,
)
from streamflow.api.submit import Submission, submit_many_plan, submit_plan
from streamflow.model.children import attached_children
from streamflow.model.definition import assemble
from streamflow.model.errors import ResultTimeout
from streamflow.model.events import Entry
from streamflow.model.schema import COMPLETED
from streamflow.runtime.cancel import cancel_plan, settled
from streamflow.runtime.projector import Projector
from streamflow.store.aio import AsyncStore
from streamflow.store.deadletters import DeadLetter, DeadLetters
from streamflow.store.plan import Plan

T = TypeVar("T")
R = TypeVar("R")
"""A handle's result type."""

ASYNC_GRACE_MS = 0
"""The asyncio face leaves a canvas's roots past the first script call (``APPLY_CHUNK``)
to the workers' recovery at once, rather than projecting them itself."""


Faces = Callable[[], AsyncStore]
"""The store's face on the running event loop (made at its first use on each loop)."""


async def submit(
    faces: Faces, projector: Projector, submission: Submission
) -> AsyncWorkflowHandle[Any]:
    """Write ``submission`` (see ``App.submit``), riding out an outage."""
    face = faces()
    await face.retrying(lambda: face.run(submit_plan(face.store, submission, ASYNC_GRACE_MS)))
    return AsyncWorkflowHandle(faces, projector, submission.workflow_id)


async def submit_many(
    faces: Faces, projector: Projector, submissions: Sequence[Submission]
) -> list[AsyncWorkflowHandle[Any]]:
    """Write ``submissions`` in one round trip (see ``App.submit_many``)."""
    face = faces()
    plan = submit_many_plan
    await face.retrying(lambda: face.run(plan(face.store, submissions, ASYNC_GRACE_MS)))
    return [AsyncWorkflowHandle(faces, projector, s.workflow_id) for s in submissions]


async def results(
    faces: Faces,
    handles: Sequence[AsyncWorkflowHandle[Any]],
    *,
    block: bool,
    timeout: float | None,
    raise_on_error: bool,
) -> list[Any]:
    """``App.results`` for asyncio code: the ended read many per round trip
    (``ended_values_plan``), the others awaited together (``timeout`` for all)."""
    face = faces()
    ids = [handle.id for handle in handles]
    found = await face.run(ended_values_plan(face.store, ids, raise_on_error))
    out = [value for _, value in found]
    later = [i for i, (ended, _) in enumerate(found) if not ended]
    waited = await asyncio.gather(
        *(
            handles[i].get_result(block=block, timeout=timeout, raise_on_error=raise_on_error)
            for i in later
        )
    )
    for i, value in zip(later, waited, strict=True):
        out[i] = value
    return out


class AsyncWorkflowHandle(Generic[R]):
    """A submitted workflow, for asyncio code: ``WorkflowHandle``'s calls as coroutines
    (never blocking the event loop). Waiting for many at once shares one subscription
    per loop."""

    def __init__(self, faces: Faces, projector: Projector, workflow_id: str) -> None:
        self._faces = faces
        self._projector = projector
        self.id = workflow_id

    @property
    def _face(self) -> AsyncStore:
        return self._faces()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"

    async def _run(self, plan: Plan[T]) -> T:
        return await self._face.run(plan)

    async def history(self) -> list[Entry]:
        """See ``WorkflowHandle.history``."""
        return await self._run(history_plan(self._face.store, self.id))

    async def events(self, after: int = 0) -> AsyncIterator[Entry]:
        """See ``WorkflowHandle.events``: ``async for event in handle.events()``."""
        face = self._face
        async with face.dedicated() as blocking:
            plan = follow_plan(face.store, self.id, after)
            async for entry in follow_async(plan, face.execute, blocking):
                yield entry

    async def snapshot(self) -> Snapshot:
        """See ``WorkflowHandle.snapshot``."""
        return await self._run(snapshot_plan(self._face.store, self.id))

    async def status(self) -> WorkflowStatus:
        """See ``WorkflowHandle.status``."""
        return await self._run(status_plan(self._face.store, self.id))

    async def wait(self, timeout: float | None = None) -> Snapshot:
        """See ``WorkflowHandle.wait``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        return await self._face.retrying(lambda: self._wait_once(deadline, timeout))

    async def _wait_once(self, deadline: float | None, timeout: float | None) -> Snapshot:
        store = self._face.store
        snap = await self._run(if_ended_plan(store, self.id))
        if snap is not None:
            return snap
        endings = self._face.endings
        ended = await endings.watch(self.id)
        try:
            while True:
                # Watched first, then looked: an end between the two is not missed.
                ended.clear()
                snap = await self._run(if_ended_plan(store, self.id))
                if snap is not None:
                    return snap
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise ResultTimeout(self.id, timeout or 0)
                # Look again at least every few seconds: a notification is not durable.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), min(remaining or 5.0, 5.0))
        finally:
            endings.unwatch(self.id, ended)

    async def _read(self, block: bool, timeout: float | None) -> Snapshot:
        return finished(self.id, await (self.wait(timeout) if block else self.snapshot()))

    async def get_result(
        self, *, block: bool = False, timeout: float | None = None, raise_on_error: bool = True
    ) -> Any:
        """See ``WorkflowHandle.get_result``."""
        snap = await self._read(block, timeout)
        spec = snap.definition.root_spec
        return await self._run(value_plan(self.id, snap, spec, raise_on_error))

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the workflow to end and return its result (see ``get_result``)."""
        result: R = await self.get_result(block=True, timeout=timeout)
        return result

    async def completed(self) -> bool:
        """See ``WorkflowHandle.completed``."""
        return (await self.snapshot()).state.status == COMPLETED

    async def results_by_part(
        self, canvas: Canvas, *, block: bool = False, timeout: float | None = None
    ) -> list[Any]:
        """See ``WorkflowHandle.results_by_part``."""
        snap = await self._read(block, timeout)
        await self._run(value_plan(self.id, snap, None, raise_on_error=True))
        found = await self._run(values_plan(snap))
        return [assemble(part.spec, found) for part in compile_canvas(canvas).parts]

    async def cancel(self, reason: str = "") -> bool:
        """See ``WorkflowHandle.cancel`` (the archive of a workflow the cancellation
        finished is left to its wake-up, not written from the loop)."""
        applied = await self._run(cancel_plan(self._projector, self.id, reason))
        cancelled = settled(self._projector, self.id, reason, applied, archive=False)
        if cancelled:  # its child workflows too (their own cancel reaches theirs)
            for child in attached_children((await self.snapshot()).state):
                await AsyncWorkflowHandle(self._faces, self._projector, child).cancel(reason)
        return cancelled

    async def parts_completed(self, canvas: Canvas) -> int:
        """See ``WorkflowHandle.parts_completed``."""
        return completed_parts(await self.snapshot(), canvas)

    async def partial_results(self) -> Any:
        """See ``WorkflowHandle.partial_results``."""
        return await self._run(partial_plan(self._face.store, self.id))


class AsyncDeadLetters:
    """``DeadLetters`` for asyncio code (``app.dead_letters_async``): the same calls,
    as coroutines."""

    def __init__(self, faces: Faces, letters: DeadLetters) -> None:
        self._faces = faces
        self._letters = letters

    async def list(self, limit: int = 100) -> list[DeadLetter]:
        """See ``DeadLetters.list``."""
        return await self._faces().run(self._letters.list_plan(limit))

    async def get(self, dead_id: str) -> DeadLetter:
        """See ``DeadLetters.get``."""
        return await self._faces().run(self._letters.get_plan(dead_id))

    async def requeue(self, dead_id: str) -> str:
        """See ``DeadLetters.requeue``."""
        return await self._faces().run(self._letters.requeue_plan(dead_id))

    async def purge(self) -> int:
        """See ``DeadLetters.purge``."""
        return await self._faces().run(self._letters.purge_plan())
