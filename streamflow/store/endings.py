"""Telling waiters that workflows ended: one pattern subscription per process's Store,
read by one daemon thread, started at the first wait (never a connection per wait)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import redis
from redis.client import PubSub

from streamflow.logs import get_logger

log = get_logger(__name__)

DONE = ":done"
"""How a workflow's channel ends (``Keys.done_channel``)."""
LISTEN_S = 0.1
"""The listener looks at ``close`` this often (closing waits for it at most this long)."""


class Endings:
    """Events set when a workflow's end is published on its done channel.

    A waiter calls ``watch`` (subscribed before it returns: an end published after it
    is not missed), looks at the workflow, waits on the event, and calls ``unwatch``.
    A notification is not durable: when the subscription breaks, every waiter is woken
    to look again, and the subscription is made again.

    Args:
        client: the Redis client (its pool gives the subscription its connection).
        pattern: the channels to subscribe to (every workflow's done channel).
    """

    def __init__(self, client: redis.Redis, pattern: str) -> None:
        self._client = client
        self._pattern = pattern
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = {}
        self._subscribed = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, workflow_id: str, timeout_s: float = 10.0) -> threading.Event:
        """An event set when ``workflow_id`` ends (or the subscription broke: look
        again); waits up to ``timeout_s`` for the subscription to be made."""
        event = threading.Event()
        with self._lock:
            self._waiters.setdefault(workflow_id, set()).add(event)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="streamflow-endings", daemon=True
                )
                self._thread.start()
        self._subscribed.wait(timeout_s)
        return event

    def unwatch(self, workflow_id: str, event: threading.Event) -> None:
        with self._lock:
            waiting = self._waiters.get(workflow_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiters[workflow_id]

    def close(self) -> None:
        self._closed.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        backoff_s = 0.0
        while not self._closed.is_set():
            # Through a typed name: redis-py < 8.2 leaves pubsub() untyped.
            open_pubsub: Callable[..., PubSub] = self._client.pubsub
            pubsub = open_pubsub()
            try:
                pubsub.psubscribe(self._pattern)
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=LISTEN_S)
                    if message is not None:
                        backoff_s = 0.0
                        self._handle(message)
            except redis.ConnectionError as exc:
                if not backoff_s and not self._closed.is_set():
                    log.warning("endings_subscription_lost", error=str(exc))
                backoff_s = min(max(backoff_s * 2, 0.05), 2.0)
            finally:
                self._subscribed.clear()
                self._wake_all()
                pubsub.close()
            self._closed.wait(backoff_s)

    def _handle(self, message: dict[str, Any]) -> None:
        dispatch(message, self._subscribed_now, self._ended)

    def _subscribed_now(self) -> None:
        self._subscribed.set()
        self._wake_all()  # anything that ended before: look again

    def _ended(self, workflow_id: str) -> None:
        with self._lock:
            waiting = list(self._waiters.get(workflow_id, ()))
        for event in waiting:
            event.set()

    def _wake_all(self) -> None:
        with self._lock:
            waiting = [event for events in self._waiters.values() for event in events]
        for event in waiting:
            event.set()


def dispatch(
    message: dict[str, Any], subscribed: Callable[[], None], ended: Callable[[str], None]
) -> None:
    """Act on a subscription's ``message``: ``subscribed()`` once the subscription is
    made (every waiter looks again: an end may have been missed before it),
    ``ended(workflow_id)`` when a workflow's end is told."""
    if message["type"] == "psubscribe":
        subscribed()
        return
    workflow_id = ended_workflow(message)
    if workflow_id is not None:
        ended(workflow_id)


def ended_workflow(message: dict[str, Any]) -> str | None:
    """The workflow whose end a subscription's ``message`` tells (None: another kind of
    message)."""
    if message["type"] != "pmessage":
        return None
    channel = message["channel"]
    channel = channel.decode() if isinstance(channel, bytes) else channel
    if not channel.endswith(DONE):
        return None
    return str(channel[: -len(DONE)].rpartition(":")[2])
