"""Loggers for library code.

If the application configured structlog, its configuration is used as is. If not,
streamflow logs at ``STREAMFLOW_LOG_LEVEL`` (default WARNING, as the standard library
does for a library's loggers) to stderr, instead of structlog's default of every level
on stdout: a program that never asked for logs sees only what went wrong.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

_fallback_wrapper: Any = None


def _fallback() -> Any:
    global _fallback_wrapper
    if _fallback_wrapper is None:
        level = os.environ.get("STREAMFLOW_LOG_LEVEL", "WARNING").upper()
        _fallback_wrapper = structlog.make_filtering_bound_logger(
            getattr(logging, level, logging.WARNING)
        )
    return _fallback_wrapper


class _LazyLogger:
    """Resolves the structlog configuration at use, not at import."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._configured: Any = None  # structlog's lazy proxy: it follows reconfiguration
        self._unconfigured: Any = None

    def _logger(self) -> Any:
        # Resolved once per mode, not per call: a filtered-out debug line costs ~1 us.
        if structlog.is_configured():
            if self._configured is None:
                self._configured = structlog.get_logger(self._name)
            return self._configured
        if self._unconfigured is None:
            self._unconfigured = structlog.wrap_logger(
                structlog.PrintLogger(sys.stderr), wrapper_class=_fallback()
            )
        return self._unconfigured

    def bind(self, **values: Any) -> Any:
        return self._logger().bind(**values)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger(), name)


def get_logger(name: str) -> Any:
    """The logger for module ``name``."""
    return _LazyLogger(name)
