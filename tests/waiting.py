"""
Waiting on conditions in tests, with a deadline instead of a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout_s: float,
    interval_s: float = 0.01,
    message: str = "condition",
) -> T:
    """
    Call ``predicate`` until it returns a truthy value or ``timeout_s`` has passed.

    Args:
        predicate: Checks the condition; a truthy result ends the wait.
        timeout_s: How long to keep trying, in seconds.
        interval_s: Pause between two calls, in seconds.
        message: What is being waited for, for the failure message.

    Returns:
        The predicate's first truthy result.

    Raises:
        AssertionError: The predicate stayed falsy until the deadline.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {message}")
        time.sleep(interval_s)
