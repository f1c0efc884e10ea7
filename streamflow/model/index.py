"""The derived index (a workflow's ``idx`` hash) as the pure core derives it from a fold:
what the scripts keep, rebuilt from the log."""

from __future__ import annotations

from streamflow.model import schema
from streamflow.model.definition import Definition
from streamflow.model.state import State


def index_fields(state: State, definition: Definition | None) -> dict[str, str | bytes | int]:
    """The derived index (``idx`` hash) that the scripts keep, rebuilt from a state (and
    its definition, once the submission is in the log).

    Fields: ``n``, ``d`` (last decision), ``st`` (status), ``def``, ``ret`` (retention in
    ms, from the submission's options); every idempotency key
    -> stream id; ``a:<node>`` attempt; ``m:<node>`` owning message id; ``c:<node>``
    deliveries; ``ok:<node>`` stream id of the result; ``ko:<node>`` stream id of the final
    failure; ``x:<node>`` encoded arguments; ``bc:<barrier>`` decrements recorded;
    ``bc:e`` sinks done (``END_COUNT``).
    """
    fields: dict[str, str | bytes | int] = {
        schema.LENGTH: state.n,
        schema.LAST_DECISION: state.last_decision,
        schema.STATUS: state.status,
        schema.DEFINITION: state.def_hash,
        schema.RETENTION: int(state.options.get("retention_ms", 0)),
    }
    fields.update(state.keys)
    for node, attempt in state.attempt.items():
        fields[f"{schema.ATTEMPT}{node}"] = attempt
    for node, msg_id in state.owner.items():
        fields[f"{schema.OWNER}{node}"] = msg_id
    for node, count in state.deliveries.items():
        fields[f"{schema.DELIVERIES}{node}"] = count
    for node, stream_id in state.result_ids.items():
        fields[f"{schema.RESULT}{node}"] = stream_id
    for node, stream_id in state.failure_ids.items():
        fields[f"{schema.FAILURE}{node}"] = stream_id
    for node, base in state.retry_base.items():
        fields[f"{schema.RETRY_BASE}{node}"] = base
    for node, blob in state.args.items():
        fields[f"{schema.ARGS}{node}"] = blob
    for barrier, sources in state.decremented.items():
        fields[f"{schema.COUNT}{barrier}"] = len(sources)
    if definition is not None:
        ends = sinks_done(definition, state)
        if ends:
            fields[schema.COUNT + schema.END_COUNT] = ends
    return fields


def sinks_done(definition: Definition, state: State) -> int:
    """The workflow's sinks done (succeeded, or failed with allow_failure): what the
    outcome script counts under ``COUNT + END_COUNT``."""
    return sum(
        1
        for node in definition.sinks
        if node in state.results or (node in state.failures and definition.task(node).allow_failure)
    )
