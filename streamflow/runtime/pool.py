"""The worker's task threads: a fixed set of threads taking calls in priority order.

``concurrent.futures.ThreadPoolExecutor`` makes a ``Future`` (a condition variable and a
lock) per call; the worker needs none of it, only to know when each call ended and how.
Here a call costs an entry on a small heap and a token on a ``queue.SimpleQueue`` that
wakes one thread.

The order: a call submitted with priority ``p`` starts as if it had been submitted
``p`` seconds later (``PRIORITY_STEP_S``): lower numbers first, as dramatiq's priorities
(0, the default, is plain arrival order); a call that waits long enough comes before
newer calls of any priority, so none starves.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

PRIORITY_STEP_S = 1.0
"""What one level of priority is worth, in seconds of waiting."""

_Entry = tuple[float, int, Callable[..., Any], tuple[Any, ...]]


class TaskPool:
    """``size`` threads, started on the first call, each calling ``ended(error)`` (None
    when the call returned) after every call it ran or dropped at shutdown.

    Args:
        size: the number of threads.
        name: their name's prefix.
        ended: called after each call, on the thread that ran it.
    """

    def __init__(self, size: int, name: str, ended: Callable[[BaseException | None], None]):
        self._size = size
        self._name = name
        self._ended = ended
        self._heap: list[_Entry] = []
        self._heap_lock = threading.Lock()
        self._order = itertools.count()
        self._bell: queue.SimpleQueue[bool] = queue.SimpleQueue()
        """One token per call submitted (a thread takes the heap's first then), and
        False per thread at shutdown."""
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any, priority: float = 0) -> None:
        """Queue ``fn(*args)`` for the next free thread, in ``priority`` order.

        Raises:
            RuntimeError: the pool was shut down.
        """
        if not self._threads:
            self._start()
        if self._closed:
            raise RuntimeError("cannot submit to a task pool that was shut down")
        due = time.monotonic() + priority * PRIORITY_STEP_S
        with self._heap_lock:
            heapq.heappush(self._heap, (due, next(self._order), fn, args))
        self._bell.put(True)

    def take(self, keep: Callable[[Callable[..., Any], tuple[Any, ...]], bool]) -> list[Any]:
        """Remove the calls not yet started for which ``keep`` is false and return their
        argument tuples (their ends are not reported: the caller accounts for them)."""
        kept: list[_Entry] = []
        taken: list[Any] = []
        with self._heap_lock:
            for entry in self._heap:
                if keep(entry[2], entry[3]):
                    kept.append(entry)
                else:
                    taken.append(entry[3])
            heapq.heapify(kept)
            self._heap = kept
        return taken  # (their tokens wake threads that find nothing: harmless)

    def shutdown(self, wait: bool) -> None:
        """Drop the calls not yet started (each still reported to ``ended``), let the
        threads finish what they run, and with ``wait``, join them."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        with self._heap_lock:
            dropped, self._heap = self._heap, []
        for _ in dropped:
            self._ended(None)
        for _ in threads:
            self._bell.put(False)
        if wait:
            for thread in threads:
                thread.join()

    def _start(self) -> None:
        with self._lock:
            if self._threads or self._closed:
                return
            for i in range(self._size):
                thread = threading.Thread(target=self._run, name=f"{self._name}_{i}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _run(self) -> None:
        while self._bell.get():
            with self._heap_lock:
                if not self._heap:
                    continue  # taken back, or dropped at shutdown
                _, _, fn, args = heapq.heappop(self._heap)
            error: BaseException | None = None
            try:
                fn(*args)
            except BaseException as exc:  # reported, never lost with the thread
                error = exc
            self._ended(error)
