"""Exceptions raised in another thread (a worker's time limits), kept out of the places
that must not be cut in two: the shared script pipeline, where a cut would leave other
threads' calls waiting forever and the connection with unread replies.

``interrupt`` raises in a thread unless it is inside ``shielded()``; then it answers
False and the interrupter tries again later. An interruption aimed at a thread just
before it entered a shielded block (not raised yet) is cancelled there and raised
before the block, as if it had landed a moment earlier.
"""

from __future__ import annotations

import ctypes
import threading

_lock = threading.Lock()
_depth: dict[int, int] = {}
"""Thread ident -> how many shielded blocks it is in."""
_aimed: dict[int, type[BaseException]] = {}
"""Thread ident -> the interruption raised in it (pending or raised) since the last
``clear``."""
_armed: set[int] = set()
"""Threads that may be interrupted now (a time-limited body is running in each)."""


def arm(ident: int) -> None:
    """Thread ``ident`` may be interrupted from now on (its time-limited body starts)."""
    _armed.add(ident)


def disarm(ident: int) -> None:
    """Thread ``ident`` may no longer be interrupted."""
    _armed.discard(ident)


def armed() -> bool:
    """Whether the calling thread may be interrupted (then it shields what must not be
    cut; other threads need not)."""
    return threading.get_ident() in _armed


def _raise_in(ident: int, exc_type: type[BaseException] | None) -> None:
    """Raise ``exc_type`` in thread ``ident`` at its next check (None: cancel one not
    raised yet)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc_type) if exc_type else None
    )


def interrupt(ident: int, exc_type: type[BaseException]) -> bool:
    """Raise ``exc_type`` in thread ``ident``, unless it is shielded or not armed;
    returns whether it was raised (or is about to be)."""
    with _lock:
        if _depth.get(ident) or ident not in _armed:
            return False
        _aimed[ident] = exc_type
        _raise_in(ident, exc_type)
        return True


def clear(ident: int) -> bool:
    """Cancel the interruption aimed at ``ident`` if it was not raised yet; returns
    whether one was aimed at it since the last ``clear``."""
    aimed = False
    while True:
        try:
            with _lock:
                aimed = _aimed.pop(ident, None) is not None or aimed
            if aimed:
                _raise_in(ident, None)
            return aimed
        except BaseException:
            # Raised here, midway (it is raised once): finish, then let the caller know.
            aimed = True


class _Shield:
    """The context manager ``shielded`` returns (a class: cheaper than a generator on a
    path taken by every script call)."""

    __slots__ = ("ident",)

    def __enter__(self) -> None:
        ident = self.ident = threading.get_ident()
        aimed: type[BaseException] | None = None
        try:
            with _lock:
                _depth[ident] = _depth.get(ident, 0) + 1
                aimed = _aimed.pop(ident, None)
            if aimed is not None:
                _raise_in(ident, None)  # cancelled if not raised yet; raised just below
        except BaseException:
            _leave(ident)
            raise
        if aimed is not None:
            _leave(ident)
            raise aimed()

    def __exit__(self, *exc: object) -> None:
        _leave(self.ident)


def shielded() -> _Shield:
    """A block no ``interrupt`` lands in.

    Raises:
        BaseException: the interruption aimed at this thread just before the block
            (raised before the block runs).
    """
    return _Shield()


def _leave(ident: int) -> None:
    with _lock:
        depth = _depth.get(ident, 0) - 1
        if depth > 0:
            _depth[ident] = depth
        else:
            _depth.pop(ident, None)
