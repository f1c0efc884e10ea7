"""The base of a worker's background roles (timer, recovery, watch): a loop in its own
thread that a Redis outage pauses and a bug does not end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import redis

from streamflow.runtime.observe import Observer
from streamflow.runtime.outage import Outage


def lost_group(exc: BaseException) -> bool:
    """Whether Redis answered that a stream or its consumer group does not exist (it lost
    its data): not an outage, the groups are created again."""
    return isinstance(exc, redis.ResponseError) and str(exc).startswith("NOGROUP")


class Role:
    """Calls ``step`` until ``stopping`` is set. A Redis error waits out the outage (with
    the shared backoff) and is told to ``observer`` (``redis_error`` with the role's
    name); any other exception is logged and the loop goes on after a pause, so one bad
    workflow cannot stop delays, retries or recovery for a process.

    Args:
        name: the thread's name, and the role's in log lines.
        stopping: set when the worker stops.
        outage: the worker's view of Redis reachability.
        log: the worker's logger.
    """

    def __init__(self, name: str, stopping: threading.Event, outage: Outage, log: Any) -> None:
        self.name = name
        self.role = name
        """The role's name, as told with its Redis errors (a subclass may give ``name``
        another meaning: the heartbeat's is its consumer's)."""
        self.stopping = stopping
        self._outage = outage
        self._log = log
        self._thread: threading.Thread | None = None
        self.regroup: Callable[[], None] | None = None
        """Called when a consumer group is missing (Redis lost its data): recreates them."""
        self.observer: Observer = Observer()
        """Told of each Redis error the loop rides out: whoever runs the role gives it the
        App's observers (the default listens to nothing)."""

    def step(self) -> None:
        """One round of the role's work (may block a little, e.g. on a read)."""
        raise NotImplementedError

    def running(self) -> bool:
        """Whether the loop goes on (default: until ``stopping``)."""
        return not self.stopping.is_set()

    def run(self) -> None:
        while self.running():
            try:
                self.step()
                self._outage.up()
            except redis.RedisError as exc:  # told here: a healthy loop pays nothing
                self.observer.redis_error(self.role)
                if lost_group(exc) and self.regroup is not None:
                    self.regroup()
                else:
                    self.stopping.wait(self._outage.down(exc))
            except Exception:
                self._log.exception("role_failed", role=self.name)
                self.stopping.wait(1.0)

    def start(self) -> None:
        """Run the loop in a daemon thread."""
        self._thread = threading.Thread(
            target=self.run, name=f"streamflow-{self.name}", daemon=True
        )
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)
