"""Crash-point injection, for tests only.

``STREAMFLOW_CRASH_POINT=<name>`` (or ``<name>@<n>``: at its n-th hit) makes the process
exit abruptly (``os._exit(77)``, no cleanup, like SIGKILL) when it reaches that point,
so tests can prove that every window between two Redis calls is recoverable.
"""

from __future__ import annotations

import os
import threading

CRASH_EXIT_CODE = 77
POINTS = (
    "worker.after_start_before_run",
    "worker.after_run_before_record",
    "worker.after_record_before_project",
    "projector.before_apply",
    "projector.between_chunks",
    "projector.after_apply_before_archive",
    "recovery.after_project_before_ack",
)

_name, _, _nth = (os.environ.get("STREAMFLOW_CRASH_POINT") or "").partition("@")
_remaining = int(_nth or 1)
_lock = threading.Lock()


def armed() -> bool:
    """Whether the environment names a crash point."""
    return bool(_name)


def crash_point(name: str) -> None:
    """Exit here if the environment names this point (a no-op otherwise)."""
    global _remaining
    if name != _name:
        return
    with _lock:
        _remaining -= 1
        if _remaining == 0:
            os._exit(CRASH_EXIT_CODE)
