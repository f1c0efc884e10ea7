"""App: the connection, the actor registry, submitting workflows and their handles."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, overload

from streamflow.api.actors import Actor, callback_of
from streamflow.api.app_async import SUBMIT_CHUNK, AsyncMethods
from streamflow.api.canvas import Canvas, Chain, Group, Message
from streamflow.api.children import run_child, start_child, tell_parent
from streamflow.api.forks import Forking
from streamflow.api.handles import WorkflowHandle, read_results
from streamflow.api.pausing import Pausing
from streamflow.api.prepare import prepare
from streamflow.api.registering import Registering
from streamflow.api.schedules import Scheduling
from streamflow.api.shapes import Shapes
from streamflow.api.submit import (
    Submission,
    check_workflow_id,
    write_many,
    write_workflow,
)
from streamflow.history.listing import WorkflowSummary, list_workflows
from streamflow.logs import get_logger
from streamflow.model.definition import CHILD_ACTOR
from streamflow.model.events import Entry
from streamflow.model.options import ActorOptions, HistoryBudget, to_ms
from streamflow.runtime.context import TaskContext
from streamflow.runtime.hooks import Hooks, call_hooks
from streamflow.runtime.observe import Observers
from streamflow.runtime.projector import Projector
from streamflow.runtime.resume import resume
from streamflow.runtime.signals import signal
from streamflow.runtime.tally import Tally
from streamflow.runtime.worker import Worker
from streamflow.store.connection import Store, masked
from streamflow.store.deadletters import DeadLetters
from streamflow.store.keys import new_workflow_id

log = get_logger(__name__)
T = TypeVar("T")
R = TypeVar("R")


@functools.cache
def _said_embedded(url: str) -> None:
    """Say once per process that Apps run on a private embedded server."""
    log.warning(
        "embedded_redis_started",
        url=url,
        note="a private server only this process reaches; pass a URL to App or set "
        "STREAMFLOW_REDIS_URL to share one",
    )


class App(AsyncMethods, Pausing, Scheduling, Registering, Forking):
    """The entry point: where workflows are submitted and actors registered.

    Args:
        url: Redis URL. Without one, ``STREAMFLOW_REDIS_URL`` is used, and without that a
            private embedded Redis is started for this process. A Redis Cluster's is
            ``redis+cluster://host:port[,host:port...]`` (nodes to start from).
        cluster: ``url`` names a node of a Redis Cluster, whatever its scheme.
        prefix: prefix of every key (default ``sf``).
        shards: number of shards workflows are spread over (default: 1 on a single
            Redis; on a cluster, the count recorded there, else 16 per master). Every
            App and worker of one Redis has the same.
        recovery_grace_ms: how long a recorded outcome may wait for its projection before
            a recovery projector takes it over.
        retention: seconds a finished workflow (its history and results) is kept before
            the sweep removes it (default 7 days); per workflow and per actor
            (``result_ttl``) it can be set too.
        large_result_bytes: results encoding to more bytes are stored out of line, in a
            key of their workflow, and referenced from the log.
        max_result_bytes: a task whose result encodes to more fails with ResultTooLarge.
        hooks: ``Hooks`` called around tasks and when workflows end.
        durability: ``"local"`` (a write is acknowledged once the primary has it, on
            disk with ``appendfsync always``) or ``"replicated"`` (also confirmed by
            ``replicas`` replicas, with WAITAOF or WAIT, within ``durability_timeout``
            seconds, else DurabilityError).
        retry_for: how long submits and result reads ride out an unreachable Redis
            (retrying with a capped backoff, logging once down and once back).
        history_budget: when a workflow's log is too long: a warning, then a failure
            (default 10,000 events or 10 MiB, then 50,000 or 50 MiB; None: no limit).
        definition_cache_size: workflow definitions kept in memory at most (the least
            recently used are read from Redis again when needed).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        cluster: bool = False,
        prefix: str = "sf",
        shards: int | None = None,
        recovery_grace_ms: int = 10_000,
        retention: float = 7 * 24 * 3600,
        large_result_bytes: int = 64 * 1024,
        max_result_bytes: int = 16 * 1024 * 1024,
        hooks: Sequence[Hooks] = (),
        durability: str = "local",
        replicas: int = 1,
        durability_timeout: float = 1.0,
        retry_for: float = 30.0,
        history_budget: HistoryBudget | None = HistoryBudget(),  # noqa: B008 (frozen)
        definition_cache_size: int = 1024,
    ) -> None:
        if url is None:
            url = os.environ.get("STREAMFLOW_REDIS_URL")
        self.embedded = url is None
        """Whether this App runs on a private embedded server (no URL was given)."""
        if url is None:
            from streamflow.store.embedded import shared_server

            url = shared_server().start()
            _said_embedded(url)
        if durability not in ("local", "replicated"):
            raise ValueError(f"durability must be 'local' or 'replicated' (got {durability!r})")
        self.url = url
        self.store = Store(
            url,
            cluster=cluster,
            prefix=prefix,
            shards=shards,
            replicas=replicas if durability == "replicated" else 0,
            wait_timeout_ms=to_ms(durability_timeout, "durability_timeout"),
            retry_for_s=retry_for,
            definition_cache_size=definition_cache_size,
        )
        # The store's parts, by their short names (tests and tools use them).
        self.client = self.store.client
        self.keys = self.store.keys
        self.shards = self.store.shards
        self.scripts = self.store.scripts
        self.definitions = self.store.definitions
        self.actors: dict[str, Actor[Any, Any]] = {}
        self.builtins: dict[str, Actor[Any, Any]] = {
            CHILD_ACTOR: Actor(
                functools.partial(run_child, self),
                name=CHILD_ACTOR,
                options=ActorOptions(),
                app=self,
                throws=(),
                retry_when=None,
            )
        }
        """streamflow's own actors, which every worker of this App runs."""
        self.projector = Projector(self.store, recovery_grace_ms=recovery_grace_ms)
        self._next_shard = 0
        self._shapes = Shapes()
        self.retention_ms = to_ms(retention, "retention")
        self.large_result_bytes = large_result_bytes
        self.max_result_bytes = max_result_bytes
        self.hooks: list[Hooks] = list(hooks)
        self.tally = Tally(self.store)
        """This process's counts of its workers' work, for ``streamflow stats``."""
        self.observers = Observers([self.tally])
        """What is told of this process's work: its stats, metrics or traces if asked."""
        self.history_budget = history_budget
        self.projector.after_workflow = self._after_workflow
        self.projector.decided = self.observers.decided
        AsyncMethods.__init__(self)
        Scheduling.__init__(self)

    def __repr__(self) -> str:
        return f"App({masked(self.url)!r}, actors={sorted(self.actors)})"

    # -- workflows ------------------------------------------------------------------

    @overload
    def submit(
        self,
        canvas: Message[R] | Chain[R],
        *,
        workflow_id: str | None = None,
        on_failure: Actor[Any, Any] | str | None = None,
        retention: float | None = None,
    ) -> WorkflowHandle[R]: ...

    @overload
    def submit(
        self,
        canvas: Group,
        *,
        workflow_id: str | None = None,
        on_failure: Actor[Any, Any] | str | None = None,
        retention: float | None = None,
    ) -> WorkflowHandle[list[Any]]: ...

    @overload
    def submit(
        self,
        canvas: Canvas,
        *,
        workflow_id: str | None = None,
        on_failure: Actor[Any, Any] | str | None = None,
        retention: float | None = None,
    ) -> WorkflowHandle[Any]: ...

    def submit(
        self,
        canvas: Canvas,
        *,
        workflow_id: str | None = None,
        on_failure: Actor[Any, Any] | str | None = None,
        retention: float | None = None,
    ) -> WorkflowHandle[Any]:
        """Compile ``canvas``, store its definition once, and start the workflow.

        Args:
            canvas: a Message, Chain, Group or WithDelay, nested freely.
            workflow_id: an id from ``new_workflow_id`` to make a retried submit
                idempotent (default: a fresh one).
            on_failure: actor (or a registered actor's name) run once if the workflow fails, with
                ``(failure, partial_results)`` (partial results: the result's shape, with
                None where nothing finished).
            retention: seconds to keep it once finished (default: the longest
                ``result_ttl`` of its actors, else the App's retention).

        Raises (each before anything is written):
            TypeError: ``canvas`` is not a canvas.
            EncodeError: an argument cannot be encoded.
            DefinitionError: the canvas nests too deep, or could only fail on the
                history budget (too many tasks, or arguments too large).
            ValueError: ``workflow_id`` is malformed or on a shard this App has not got.
            WorkflowIdConflict: ``workflow_id`` is taken by another canvas, or the same
                canvas with other arguments (the same ones are an idempotent retry).
        """
        submission = self._prepare(canvas, workflow_id, on_failure, retention)
        # Retried through a Redis outage: the id was chosen before the first try, so a
        # submit that went through before the connection broke is recognised (EXISTS).
        with self.observers.submission([submission.workflow_id]):
            self.retrying(lambda: write_workflow(self.store, self.projector, submission))
        return self.handle(submission.workflow_id)

    def submit_many(
        self, canvases: Iterable[Canvas], *, retention: float | None = None
    ) -> list[WorkflowHandle[Any]]:
        """Submit many workflows, their writes pipelined (``SUBMIT_CHUNK`` per round
        trip); returns their handles in order. Every canvas is compiled and checked
        before the first write (see ``submit`` for what raises)."""
        submissions = [self._prepare(canvas, None, None, retention) for canvas in canvases]
        for start in range(0, len(submissions), SUBMIT_CHUNK):
            chunk = submissions[start : start + SUBMIT_CHUNK]
            with self.observers.submission([s.workflow_id for s in chunk]):
                self.retrying(functools.partial(write_many, self.store, self.projector, chunk))
        return [self.handle(submission.workflow_id) for submission in submissions]

    def results(
        self,
        handles: Sequence[WorkflowHandle[Any]],
        *,
        block: bool = True,
        timeout: float | None = None,
        raise_on_error: bool = True,
    ) -> list[Any]:
        """The results of many workflows, in order: those that ended are read in
        pipelined round trips (500 per trip), the others waited for as ``get_result``
        does (``timeout``: for them all).

        Raises:
            ResultMissing, ResultTimeout, ResultFailure: as ``get_result`` (the first).
        """
        return read_results(
            self.store, handles, block=block, timeout=timeout, raise_on_error=raise_on_error
        )

    def _prepare(
        self,
        canvas: Canvas,
        workflow_id: str | None,
        on_failure: Actor[Any, Any] | str | None,
        retention: float | None,
        links: Mapping[str, Any] | None = None,
    ) -> Submission:
        """Compile and check a canvas (nothing written): see ``submit``; ``links`` go
        into the options its ``WorkflowSubmitted`` records."""
        if workflow_id is not None:
            check_workflow_id(workflow_id, self.shards)
        return prepare(
            canvas,
            workflow_id,
            callback_of(on_failure, "on_failure", self.actors),
            retention,
            shapes=self._shapes,
            retention_ms=self.retention_ms,
            budget=self.history_budget,
            new_id=self.new_workflow_id,
            observe=self.observers.submitting,
            links=links,
        )

    def new_workflow_id(self) -> str:
        """A fresh workflow id (choose it before submitting to make retries idempotent)."""
        shard = self._next_shard
        self._next_shard = (shard + 1) % self.shards
        return new_workflow_id(shard)

    def retrying(self, call: Callable[[], T]) -> T:
        """``call()``, retried while Redis is unreachable, for at most ``retry_for``
        seconds (see ``App``).

        Raises:
            redis.ConnectionError: Redis stayed unreachable.
        """
        return self.store.retrying(call)

    @property
    def dead_letters(self) -> DeadLetters:
        """Messages no worker could handle (list, get, requeue, purge)."""
        return self.store.dead_letters

    def add_hooks(self, *hooks: Hooks) -> None:
        """Register more hooks."""
        self.hooks.extend(hooks)

    def call_hooks(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Call ``method`` on every hook; a hook's exception is logged, never raised."""
        call_hooks(self.hooks, method, *args, **kwargs)

    def start_child(
        self, task: TaskContext, canvas: Any, detached: bool, n: int
    ) -> WorkflowHandle[Any]:
        """What ``current_task().submit`` calls in this App's workers."""
        return start_child(self, task, canvas, detached=detached, n=n)

    def _after_workflow(self, workflow_id: str, status: str) -> None:
        tell_parent(self, workflow_id)
        self.call_hooks("after_workflow", workflow_id, status)
        self.observers.workflow_ended(workflow_id, status)

    def history(self, workflow_id: str) -> list[Entry]:
        """A workflow's events with their sequence numbers, stream ids and times.

        Raises:
            WorkflowNotFoundError: no log and no archive for that id.
        """
        return self.handle(workflow_id).history()

    def workflows(self, status: str | None = None, limit: int = 100) -> list[WorkflowSummary]:
        """Recently submitted workflows, newest first: running ones, and ended ones until
        their retention removes them; ``status`` keeps one status only.

        Raises:
            ValueError: an unknown status or a limit below 1.
        """
        return list_workflows(self.store, status, limit)

    def signal(self, workflow_id: str, name: str, payload: Any = None, *, sender: str = "") -> bool:
        """Send signal ``name`` to a workflow: the nodes waiting for it (``Signal(name)``)
        succeed with ``payload``, now or once they are reached. Recorded once, in the log
        (``SignalReceived``, with ``sender``: who or what sent it).

        Returns True if it was recorded, False if the workflow had it already (a
        duplicate: nothing changes).

        Raises:
            SignalError: the workflow is unknown, waits for no such signal, has ended
                without it, or the payload cannot be encoded or is over 64 KiB.
        """
        return signal(self.projector, workflow_id, name, payload, sender)

    def resume_workflow(self, workflow_id: str, *, reason: str = "", by: str = "") -> list[int]:
        """Resume a failed workflow from where it failed: the nodes that failed for
        good, and those the failure cut short, run again (their retries counted afresh);
        every result is kept and no node that succeeded runs again. Recorded as
        ``WorkflowResumed`` (with ``reason`` and ``by``: who or what asked). An archived
        workflow is reopened; its handles read it as running again.

        Returns the nodes that run again.

        Raises:
            ResumeError: the workflow is unknown, or not failed.
        """
        return sorted(resume(self.projector, workflow_id, reason, by))

    def handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle on an existing workflow (nothing is checked until it is used)."""
        return WorkflowHandle(self.store, self.projector, workflow_id)

    def worker(self, **options: Any) -> Worker:
        """A worker for this app's actors (see ``streamflow.Worker`` for the options)."""
        return Worker(self, **options)

    def close(self) -> None:
        """Close the connection pool (from asyncio code: ``aclose``, which closes the
        event loop's pool too)."""
        self._faces.clear()
        self.store.close()
