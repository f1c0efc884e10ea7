"""Time limits of sync task bodies: ``TimeLimitExceeded`` raised in the thread running one.

Only the body itself can be interrupted. ``run`` registers its deadline, calls it, and on
the way out makes sure no interruption is left pending for the thread: once ``run`` has
returned or raised, whatever the thread does next (hooks, recording the outcome in the
shared script pipeline) runs without an exception landing in the middle of it.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import Any

from streamflow.model.errors import TimeLimitExceeded


def raise_in_thread(ident: int, exc_type: type[BaseException] | None) -> None:
    """Raise ``exc_type`` in thread ``ident`` at its next bytecode check (None: cancel one
    set and not yet raised)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc_type) if exc_type else None
    )


class TimeLimits:
    """Deadlines of the bodies running now, by thread; ``enforce`` interrupts late ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadlines: dict[int, float] = {}
        self._fired: set[int] = set()

    def run(self, limit_ms: int | None, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, interrupted after ``limit_ms`` (None: no limit).

        Raises:
            TimeLimitExceeded: the limit was reached (even if the body went on and
                returned, having caught the interruption).
        """
        if not limit_ms:
            return fn(*args, **kwargs)
        ident = threading.get_ident()
        with self._lock:
            self._deadlines[ident] = time.monotonic() + limit_ms / 1000
        try:
            result = fn(*args, **kwargs)
        finally:
            self._leave(ident)
        return result

    def _leave(self, ident: int) -> None:
        fired = interrupted = False
        while True:
            try:
                with self._lock:
                    self._deadlines.pop(ident, None)
                    fired = fired or ident in self._fired
                    self._fired.discard(ident)
                if fired:
                    raise_in_thread(ident, None)  # cancel it if it is still to be raised
                break
            except TimeLimitExceeded:
                # Raised here, midway through: finish cleaning up (it is raised once).
                interrupted = True
        if fired or interrupted:
            raise TimeLimitExceeded("")

    def enforce(self) -> None:
        """Interrupt every body past its deadline (called by the watch)."""
        now = time.monotonic()
        with self._lock:
            for ident, deadline in list(self._deadlines.items()):
                if now >= deadline and ident not in self._fired:
                    self._fired.add(ident)
                    raise_in_thread(ident, TimeLimitExceeded)
