"""One worker process of ``proptests.redis_driver``'s cluster, made to be stepped from the
test thread: the code's crash points raise ``Crash`` (when armed) where they would exit
the process, ``DeferredPool`` keeps what the worker submits to its task threads for a
later step to run, ``RecordingScripts`` counts the replies of the start and outcome
scripts, and each actor body fails (``Boom``) on the attempts the case's plan says.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import streamflow.runtime.consumer
import streamflow.runtime.executor
import streamflow.runtime.projector
import streamflow.runtime.recorder
import streamflow.runtime.recovery
from proptests.simulator import ACTORS, Case
from streamflow.api.app import App
from streamflow.runtime.context import current_task
from streamflow.runtime.worker import Worker
from streamflow.store.runner import Scripts
from streamflow.store.scripts import Call, reply_code

QUEUES = ("default", "other")

# -- crashes ---------------------------------------------------------------------------


class Crash(BaseException):
    """The process dies here (a BaseException: the worker's ``except Exception`` must not
    turn it into a task failure)."""


_armed: list[str] = []


def _crash_point(name: str) -> None:
    if _armed and _armed[0] == name:
        _armed.clear()
        raise Crash(name)


@contextlib.contextmanager
def crash_points() -> Iterator[None]:
    """Make the code's crash points raise ``Crash`` when armed (see ``armed``)."""
    modules = (
        streamflow.runtime.consumer,
        streamflow.runtime.executor,
        streamflow.runtime.projector,
        streamflow.runtime.recorder,
        streamflow.runtime.recovery,
    )
    saved = [m.crash_point for m in modules]
    for module in modules:
        module.crash_point = _crash_point  # type: ignore[attr-defined]
    try:
        yield
    finally:
        _armed.clear()
        for module, original in zip(modules, saved, strict=True):
            module.crash_point = original  # type: ignore[attr-defined]


@contextlib.contextmanager
def armed(point: str | None) -> Iterator[None]:
    """Crash at ``point`` (its first hit) within the block; None: no crash."""
    _armed[:] = [point] if point else []
    try:
        yield
    finally:
        _armed.clear()


# -- a worker without threads ----------------------------------------------------------


class DeferredPool:
    """Stands in for the worker's task threads: keeps each submitted call for a later
    step, which reports its end to ``ended`` as a task thread does."""

    def __init__(self) -> None:
        self.items: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self.ended: Callable[[BaseException | None], None] = lambda error: None

    def submit(self, fn: Callable[..., Any], *args: Any, priority: float = 0) -> None:
        self.items.append((fn, args))  # the machine picks what runs next, not ``priority``

    def take(self, keep: Callable[[Callable[..., Any], tuple[Any, ...]], bool]) -> list[Any]:
        taken = [args for fn, args in self.items if not keep(fn, args)]
        self.items = [(fn, args) for fn, args in self.items if keep(fn, args)]
        return taken

    def shutdown(self, wait: bool) -> None:
        self.items.clear()


class Boom(Exception):
    """A planned failure of an attempt."""


class RecordingScripts:
    """The worker's scripts, counting the start and outcome scripts' replies."""

    def __init__(self, scripts: Scripts, stats: collections.Counter[str]) -> None:
        self._scripts = scripts
        self._stats = stats

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scripts, name)

    def run(self, call: Call) -> Any:
        raw = self._scripts.run(call)
        if call.script in ("start", "outcome"):
            self._stats[f"{call.script} {reply_code(raw).value}"] += 1
        return raw

    def batch(self, calls: list[Call]) -> list[Any]:
        results = self._scripts.batch(calls)
        names = {name for name, _, _ in calls}
        for (name, _, _), raw in zip(calls, results, strict=True):
            if name in ("start", "outcome", "apply") and not isinstance(raw, Exception):
                # An apply sent with its outcome: decisions made ahead (speculation).
                label = "speculative apply" if name == "apply" and "outcome" in names else name
                self._stats[f"{label} {reply_code(raw).value}"] += 1
        return results


class Process:
    """One worker process: an App (connection, projector cache) and its Worker."""

    def __init__(
        self,
        url: str,
        prefix: str,
        name: str,
        plan: dict[str, Case],
        stats: Any,
        options: dict[str, Any],
    ) -> None:
        self.name = name
        self.app = App(url, prefix=prefix, shards=1)  # the machine drives shard 0
        for actor_name, actor in ACTORS.items():
            self.app.actor(
                _body(actor_name, plan), actor_name=actor_name, queue=actor.options.queue
            )
        self.pool = DeferredPool()
        self.worker = Worker(
            self.app,
            queues=QUEUES,
            concurrency=1,
            lease_ms=0,  # every pending message may be claimed: its lease has run out
            max_deliveries=10**6,  # poison detection is not what this test is about
            consumer=name,
            timer=False,
            recovery=False,
            pool=self.pool,
            **options,
        )
        self.pool.ended = self.worker.executor.ended
        self.app.store.scripts = RecordingScripts(self.app.scripts, stats)  # type: ignore[assignment]
        self.worker.create_groups()

    def close(self) -> None:
        self.app.close()


def _body(name: str, plan: dict[str, Case]) -> Callable[..., Any]:
    fn = ACTORS[name].fn

    def body(*args: Any, **kwargs: Any) -> Any:
        task = current_task()
        assert task is not None
        case = plan.get(task.workflow_id)  # a child workflow: none of its tasks fail
        if case is not None and task.attempt <= case.fail_until.get(task.node, 0):
            raise Boom(f"attempt {task.attempt}")
        return fn(*args, **kwargs)

    body.__name__ = name
    return body
