"""Cancelling a workflow: WorkflowCancelled recorded once, as a plan both faces of a
handle carry out (``WorkflowHandle.cancel``, ``AsyncWorkflowHandle.cancel``)."""

from __future__ import annotations

from streamflow.logs import get_logger
from streamflow.model.decide import finished
from streamflow.model.errors import ScriptError
from streamflow.model.events import Event, WorkflowCancelled, to_entry
from streamflow.model.schema import RUNNING
from streamflow.model.state import fold_all
from streamflow.runtime.projector import MAX_ROUNDS, Applied, Projector
from streamflow.store.log import log_plan
from streamflow.store.plan import Plan, checked, run
from streamflow.store.scripts import Reply, reply_code

log = get_logger(__name__)


def cancel(projector: Projector, workflow_id: str, reason: str) -> bool:
    """Record WorkflowCancelled (once); False if the workflow had already ended.

    Raises:
        ScriptError: it did not settle (endless conflicts).
    """
    applied = run(cancel_plan(projector, workflow_id, reason), projector.store.execute)
    return settled(projector, workflow_id, reason, applied)


def settled(
    projector: Projector,
    workflow_id: str,
    reason: str,
    applied: Applied | None,
    archive: bool = True,
) -> bool:
    """After ``cancel_plan``: whether it recorded the end; the projector settles what it
    applied (``archive``: archive it now if the script could not, else its wake-up
    will)."""
    if applied is None:
        return False
    projector.settle(workflow_id, *applied, archive=archive)
    log.info("workflow_cancelled", workflow_id=workflow_id, reason=reason)
    return applied.ended


def cancel_plan(projector: Projector, workflow_id: str, reason: str) -> Plan[Applied | None]:
    """``cancel`` as a plan, from a fold of the whole log (no cache: both faces
    carry it out); what it applied, for ``settle``, or None if the workflow had
    already ended.

    Raises:
        ScriptError: it did not settle (endless conflicts).
    """
    keys = projector.store.keys
    for _ in range(MAX_ROUNDS):
        raw = yield from log_plan(keys, workflow_id)
        state = fold_all([to_entry(item) for item in raw])
        if state.status != RUNNING:
            return None  # ended (or archived, or unknown)
        definition = yield from projector.store.definitions.get_plan(state.def_hash, workflow_id)
        decisions: list[Event] = [WorkflowCancelled(reason=reason, cause=state.n)]
        done = finished(definition, state, decisions)
        folded = (state.n, state.last_id)
        call = projector.apply_call(
            workflow_id, definition, decisions, {}, state.last_decision, folded, None, done
        )
        (reply_raw,) = yield [call]
        reply = reply_code(checked(reply_raw))
        if reply is Reply.OK:
            archived, ended = bool(int(reply_raw[3])), bool(int(reply_raw[4]))
            return Applied(decisions, archived, ended, done)
        if reply in (Reply.TERMINAL, Reply.GONE):
            return None
        if reply is Reply.REBUILD:
            yield from projector.rebuild_plan(workflow_id)
    raise ScriptError(f"cancelling {workflow_id} did not settle in {MAX_ROUNDS} rounds")
