"""``Signal``: a canvas node that waits for a signal sent from outside the workflow
(``App.signal``) and passes its payload on like a result."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from streamflow.api.canvas import Message
from streamflow.api.options import actor_options
from streamflow.model.definition import SIGNAL_ACTOR
from streamflow.model.options import DEFAULT_QUEUE, to_ms


def Signal(  # a canvas node, named like the others (Chain, Group)
    name: str,
    timeout: float | datetime.timedelta | None = None,
    *,
    max_retries: int = 0,
    min_backoff: float = 1.0,
    max_backoff: float = 60.0,
    allow_failure: bool = False,
    queue: str = DEFAULT_QUEUE,
) -> Message[Any]:
    """A node that completes when ``app.signal(workflow_id, name, payload)`` arrives;
    its result is the payload, piped to the next step like any result (what is piped
    into it is ignored). A signal sent before the node is reached is kept for it.

    Args:
        name: the signal's name (every node of the workflow waiting for it takes it).
        timeout: seconds (or a timedelta) to wait once the node is reached; then the
            node fails with ``SignalTimeout`` (None: wait as long as the workflow lives).
        max_retries: waits after a timeout, each after a backoff (``min_backoff`` to
            ``max_backoff`` seconds, doubling).
        allow_failure: a final timeout yields a ``Failure`` value and the workflow goes on.
        queue: the queue of the timeout's message (a worker of it fails the node).

    Raises:
        ValueError: an empty name, a bad queue, or a timeout that is not positive.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a signal's name is a non-empty string (got {name!r})")
    timeout_ms = None if timeout is None else to_ms(timeout, "timeout")
    if timeout_ms == 0:
        raise ValueError("a signal's timeout must be positive (None: no timeout)")
    return builtin_node(
        f"{SIGNAL_ACTOR}{name}",
        queue=queue,
        max_retries=max_retries,
        min_backoff=min_backoff,
        max_backoff=max_backoff,
        allow_failure=allow_failure,
        time_limit_ms=timeout_ms,
    )


def builtin_node(
    actor_name: str,
    *,
    queue: str,
    max_retries: int,
    min_backoff: float,
    max_backoff: float,
    allow_failure: bool,
    args: tuple[object, ...] = (),
    time_limit_ms: int | None = None,
) -> Message[Any]:
    """A canvas node of one of streamflow's own actors (``@...``): its options checked
    like an actor's, nothing piped into it.

    Raises:
        ValueError: a bad queue or retry count.
    """
    options = actor_options(
        queue=queue,
        max_retries=max_retries,
        min_backoff=min_backoff,
        max_backoff=max_backoff,
        time_limit=None,
        result_ttl=None,
    )
    return Message(
        actor_name=actor_name,
        options=dataclasses.replace(options, time_limit_ms=time_limit_ms),
        args=args,
        pipe_ignore=True,
        allow_failure=allow_failure,
    )
