"""Forks (``App.fork_workflow``, ``streamflow resume ID --from NODE``): a new workflow
that runs one node of another again, and everything that follows from it, with the same
inputs, keeping every other result (see ``streamflow.model.fork``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamflow.api.aio import ASYNC_GRACE_MS, AsyncWorkflowHandle
from streamflow.api.handles import WorkflowHandle
from streamflow.api.reads import history_plan
from streamflow.api.submit import Submission, decided, submit_plan, write_workflow
from streamflow.model.errors import ForkError, WorkflowNotFoundError
from streamflow.model.events import WorkflowSubmitted, encode_event
from streamflow.model.fork import FORK, fork_refused, kept_results
from streamflow.model.messages import shard_of
from streamflow.model.state import fold_all
from streamflow.model.version import __version__
from streamflow.runtime.projector import Projector
from streamflow.store.aio import AsyncStore
from streamflow.store.connection import Store
from streamflow.store.keys import new_workflow_id
from streamflow.store.plan import Plan, run


class Forking:
    """The App's ``fork_workflow`` and ``fork_workflow_async``."""

    store: Store
    projector: Projector
    # The App's, which these call.
    handle: Callable[[str], WorkflowHandle[Any]]
    handle_async: Callable[[str], AsyncWorkflowHandle[Any]]
    retrying: Callable[[Callable[[], Any]], Any]
    _face: Callable[[], AsyncStore]

    def fork_workflow(
        self,
        workflow_id: str,
        from_node: int,
        *,
        reason: str = "",
        by: str = "",
        fork_id: str | None = None,
    ) -> WorkflowHandle[Any]:
        """A new workflow (a fork) that runs task node ``from_node`` of ``workflow_id``
        again, and every task that follows from it, with the same inputs; every other
        task that had succeeded keeps its result and does not run. The original is left
        as it is. The fork's ``WorkflowSubmitted`` names where it came from (option
        ``fork``: the workflow, the node, ``reason`` and ``by``). Node numbers are those
        ``streamflow show`` prints (``#3``).

        ``fork_id``: the fork's workflow id (choose it to make a retry idempotent;
        default: a fresh one).

        Raises:
            ForkError: the workflow is unknown, or ``from_node`` is not one of its tasks.
        """
        store = self.store
        plan = fork_plan  # a fresh plan for each try
        submission: Submission = self.retrying(
            lambda: run(plan(store, workflow_id, from_node, reason, by, fork_id), store.execute)
        )
        self.retrying(lambda: write_workflow(self.store, self.projector, submission))
        return self.handle(submission.workflow_id)

    async def fork_workflow_async(
        self,
        workflow_id: str,
        from_node: int,
        *,
        reason: str = "",
        by: str = "",
        fork_id: str | None = None,
    ) -> AsyncWorkflowHandle[Any]:
        """``fork_workflow`` for asyncio code: the fork's ``AsyncWorkflowHandle``."""
        face = self._face()
        store = face.store
        submission: Submission = await face.retrying(
            lambda: face.run(fork_plan(store, workflow_id, from_node, reason, by, fork_id))
        )
        await face.retrying(lambda: face.run(submit_plan(store, submission, ASYNC_GRACE_MS)))
        return self.handle_async(submission.workflow_id)


def fork_plan(
    store: Store,
    workflow_id: str,
    from_node: int,
    reason: str,
    by: str,
    fork_id: str | None,
) -> Plan[Submission]:
    """Read the workflow and make its fork's submission: its definition and arguments,
    its options (but its parent's link) and the results it keeps. Results stored out
    of line are copied into the fork's results (under the same names).

    Raises:
        ForkError: the workflow is unknown, or ``from_node`` is not one of its tasks.
    """
    try:
        history = yield from history_plan(store, workflow_id)
    except WorkflowNotFoundError:
        raise ForkError(f"no workflow {workflow_id!r} to fork (unknown or expired)") from None
    state = fold_all(history)
    definition = yield from store.definitions.get_plan(state.def_hash, workflow_id)
    refused = fork_refused(definition, state, from_node)
    if refused:
        raise ForkError(f"cannot fork workflow {workflow_id}: {refused}")
    results = kept_results(definition, state, from_node)
    fork_id = fork_id or new_workflow_id(shard_of(workflow_id))
    refs = [ref for _, ref in results.values() if ref]
    if refs:  # the fork's results hash holds them as its own
        (values,) = yield [("HMGET", store.keys.results(workflow_id), *refs)]
        if None in values:
            raise ForkError(f"cannot fork workflow {workflow_id}: a result it keeps is gone")
        pairs = [x for ref, value in zip(refs, values, strict=True) for x in (ref, value)]
        yield [("HSET", store.keys.results(fork_id), *pairs)]
    options = {k: v for k, v in state.options.items() if k not in ("parent", FORK)}
    options[FORK] = {
        "workflow_id": workflow_id,
        "node": from_node,
        "reason": reason,
        "by": by,
        "results": results,
    }
    submitted = WorkflowSubmitted(
        def_hash=definition.hash, args=state.args, options=options, engine_version=__version__
    )
    return Submission(
        fork_id, definition, submitted, encode_event(submitted), decided(definition, submitted)
    )
