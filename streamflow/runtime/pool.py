"""The worker's task threads: a fixed set of threads taking calls from one queue.

``concurrent.futures.ThreadPoolExecutor`` makes a ``Future`` (a condition variable and a
lock) per call; the worker needs none of it, only to know when each call ended and how,
so each call here costs a tuple on a ``queue.SimpleQueue``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


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
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` for the next free thread.

        Raises:
            RuntimeError: the pool was shut down.
        """
        if not self._threads:
            self._start()
        if self._closed:
            raise RuntimeError("cannot submit to a task pool that was shut down")
        self._queue.put((fn, args))

    def take(self, keep: Callable[[Callable[..., Any], tuple[Any, ...]], bool]) -> list[Any]:
        """Remove the calls not yet started for which ``keep`` is false and return their
        argument tuples (their ends are not reported: the caller accounts for them)."""
        queued: list[tuple[Callable[..., Any], tuple[Any, ...]] | None] = []
        while True:
            try:
                queued.append(self._queue.get_nowait())
            except queue.Empty:
                break
        taken: list[Any] = []
        for item in queued:
            if item is not None and not keep(*item):
                taken.append(item[1])
            else:
                self._queue.put(item)
        return taken

    def shutdown(self, wait: bool) -> None:
        """Drop the calls not yet started (each still reported to ``ended``), let the
        threads finish what they run, and with ``wait``, join them."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._ended(None)
        for _ in threads:
            self._queue.put(None)
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
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args = item
            error: BaseException | None = None
            try:
                fn(*args)
            except BaseException as exc:  # reported, never lost with the thread
                error = exc
            self._ended(error)
