"""An attempt's end as the event that records it: a ``TaskSucceeded`` with its result (in
the log, or out of line when large), or a ``TaskFailed`` with the retry policy's decision
(the jitter drawn here, by the shell, and recorded)."""

from __future__ import annotations

import random
import time

from streamflow.logs import get_logger
from streamflow.model import codec
from streamflow.model.errors import AgeLimitExceeded, EncodeError, ResultTooLarge
from streamflow.model.events import TaskFailed, TaskSucceeded
from streamflow.model.failures import error_data
from streamflow.model.retry import next_attempt
from streamflow.runtime.jobs import Job

log = get_logger(__name__)


def too_old(job: Job) -> AgeLimitExceeded | None:
    """The error of a message that waited in its queue longer than its ``max_age``
    (its id is the time it was put there, by Redis's clock), if it did."""
    max_age_ms = job.task.options.max_age_ms
    if max_age_ms is None:
        return None
    waited_ms = int(time.time() * 1000) - int(job.msg_id.partition("-")[0])
    if waited_ms <= max_age_ms:
        return None
    return AgeLimitExceeded(
        f"{job.actor.name}'s message waited {waited_ms} ms in its queue, over its "
        f"max_age of {max_age_ms} ms: not run"
    )


def succeeded(
    job: Job, result: object, *, large_bytes: int, max_bytes: int
) -> TaskSucceeded | TaskFailed:
    """The event of a body that returned ``result`` (a failure if it cannot be kept).

    A result encoding to more than ``large_bytes`` is stored out of line (its bytes are
    left in ``job.blob`` for the outcome script); above ``max_bytes`` the task fails.
    """
    try:
        data = codec.encode_checked(result, what=f"result of {job.actor.name}")
    except EncodeError as exc:
        return failed(job, exc)
    if len(data) > max_bytes:
        too_large = ResultTooLarge(
            f"result of {job.actor.name} is {len(data)} bytes encoded, "
            f"over the limit of {max_bytes}"
        )
        return failed(job, too_large)
    if len(data) > large_bytes:
        # Out of line: the log keeps a reference, the outcome script stores the bytes.
        job.blob = data
        ref = f"{job.node}:{job.attempt}"
        return TaskSucceeded(
            node=job.node, attempt=job.attempt, result_ref=ref, cause=job.start_seq
        )
    return TaskSucceeded(node=job.node, attempt=job.attempt, result=result, cause=job.start_seq)


def failed(job: Job, exc: BaseException) -> TaskFailed:
    """The event of a body that raised ``exc``, with what the retry policy decided."""
    retry = next_attempt(
        attempt=job.attempt - job.retry_base,
        options=job.task.options,
        error=exc,
        throws=job.actor.throws,
        retry_when=None if job.actor.retry_when is None else lambda: _ask_retry_when(job, exc),
        jitter=random.random(),
    )
    return TaskFailed(
        node=job.node,
        attempt=job.attempt,
        error=error_data(exc),
        retry_delay_ms=retry.delay_ms,
        later=retry.later,
        exhausted=retry.exhausted,
        cause=job.start_seq,
    )


def _ask_retry_when(job: Job, exc: BaseException) -> bool:
    """The actor's ``retry_when(retries so far, exc)``; an exception it raises is logged
    and counts as no."""
    predicate = job.actor.retry_when
    assert predicate is not None
    try:
        return bool(predicate(job.attempt - 1 - job.retry_base, exc))
    except Exception:
        log.exception("retry_when_failed", actor=job.actor.name)
        return False
