"""Time limits of sync task bodies: ``TimeLimitExceeded`` raised in the thread running one.

Only the body itself is interrupted: ``run`` registers its deadline, calls it, and on the
way out cancels an interruption not raised yet, so whatever the thread does next (hooks,
recording the outcome) runs whole. Inside the body, the shared script pipeline is
shielded (``streamflow.store.interrupts``): a body that hits its limit while it calls
the App (a rate limiter, a submission) is interrupted before or after that call, never in
the middle of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from streamflow.model.errors import TimeLimitExceeded
from streamflow.store import interrupts


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
        interrupts.arm(ident)
        with self._lock:
            self._deadlines[ident] = time.monotonic() + limit_ms / 1000
        try:
            result = fn(*args, **kwargs)
        finally:
            self._leave(ident)
        return result

    def _leave(self, ident: int) -> None:
        fired = False
        while True:
            try:
                with self._lock:
                    self._deadlines.pop(ident, None)
                    fired = ident in self._fired or fired
                    self._fired.discard(ident)
                interrupts.disarm(ident)
                interrupts.clear(ident)  # cancelled if not raised yet: raised below
                break
            except TimeLimitExceeded:
                fired = True  # raised here, midway (it is raised once): finish first
        if fired:
            raise TimeLimitExceeded("")

    def enforce(self) -> None:
        """Interrupt every body past its deadline (called by the watch); one inside the
        script pipeline is interrupted at a later call, once out of it."""
        now = time.monotonic()
        with self._lock:
            for ident, deadline in list(self._deadlines.items()):
                late = now >= deadline and ident not in self._fired
                if late and interrupts.interrupt(ident, TimeLimitExceeded):
                    self._fired.add(ident)
