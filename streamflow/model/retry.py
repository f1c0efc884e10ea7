"""The retry policy: whether, and how long after, a failed attempt runs again.

Pure: the jitter is drawn by the shell and recorded in the ``TaskFailed`` it decides, and
an actor's ``retry_when`` predicate is asked through the shell (which handles what it
raises), only when the policy needs its answer. The worker and the test simulator both
decide with ``next_attempt``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from streamflow.model.errors import (
    AgeLimitExceeded,
    EncodeError,
    RateLimitExceeded,
    ResultTooLarge,
)
from streamflow.model.errors import Retry as RetryAsked
from streamflow.model.options import ActorOptions

FINAL_ERRORS: tuple[type[BaseException], ...] = (EncodeError, ResultTooLarge, AgeLimitExceeded)
"""Failures that another run would repeat (the body ran and its result cannot be kept,
or the message was too old to run): they fail the task at once, whatever the policy."""


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """What follows a failed attempt."""

    delay_ms: int | None
    """Run the next attempt this long after the failure; None: the task fails for good."""
    later: bool = False
    """Retried whatever ``max_retries`` says (a rate limit, or the actor's
    ``retry_when``); recorded as ``TaskFailed.later``."""
    exhausted: bool = False
    """No retry because the policy declined one (recorded as ``TaskFailed.exhausted``)."""


FAIL = Retry(None)
EXHAUSTED = Retry(None, exhausted=True)


def backoff_ms(attempt: int, options: ActorOptions, jitter: float) -> int:
    """The delay before retrying ``attempt``: ``min_backoff`` doubled per attempt, at most
    ``max_backoff``, times 0.5 to 1.0 by ``jitter`` (0.0 to 1.0)."""
    base = min(options.max_backoff_ms, options.min_backoff_ms * 2 ** (attempt - 1))
    return int(base * (0.5 + 0.5 * jitter))


def next_attempt(
    *,
    attempt: int,
    options: ActorOptions,
    error: BaseException,
    throws: tuple[type[BaseException], ...] = (),
    retry_when: Callable[[], bool] | None = None,
    jitter: float = 1.0,
) -> Retry:
    """Whether and when attempt ``attempt`` (1 for the first) is followed by another.

    Args:
        attempt: the attempt that failed.
        options: the actor's options, as its definition recorded them.
        error: what the attempt raised.
        throws: the actor's exception types that fail it at once.
        retry_when: asks the actor's ``retry_when`` predicate, if it has one (it then
            decides instead of ``max_retries``).
        jitter: a number from 0.0 to 1.0 the shell drew (1.0: the longest delay).

    Returns:
        The delay of the next attempt, or ``FAIL`` (``EXHAUSTED`` when the policy
        declined a retry):

        - ``RateLimitExceeded`` is not the task's fault: it runs again after 0.5 to 1.5
          times ``min_backoff``, whatever the policy (``later``);
        - ``throws`` and ``FINAL_ERRORS`` fail at once;
        - ``retry_when`` decides (a retry is ``later``);
        - else the task is retried while ``attempt <= max_retries``;

        a retry the body asked for (``streamflow.Retry``) with a delay runs after that
        delay, not the backoff.
    """
    if isinstance(error, RateLimitExceeded):
        return Retry(int(options.min_backoff_ms * (0.5 + jitter)), later=True)
    if isinstance(error, (*throws, *FINAL_ERRORS)):
        return FAIL
    delay_ms = backoff_ms(attempt, options, jitter)
    if isinstance(error, RetryAsked) and error.delay_ms is not None:
        delay_ms = error.delay_ms
    if retry_when is not None:
        return Retry(delay_ms, later=True) if retry_when() else EXHAUSTED
    if attempt <= options.max_retries:
        return Retry(delay_ms)
    return EXHAUSTED
