"""What the command's parts share: logging, loading an App, connecting, reading a
workflow's history, and colours on a terminal."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

import structlog

from streamflow.api.app import App
from streamflow.history.export import import_jsonl
from streamflow.model.definition import Definition
from streamflow.model.events import Entry, WorkflowSubmitted


def configure_logging(level: str) -> None:
    """Human-readable structlog output on stderr (only the CLI configures logging)."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
    )


def load_app(spec: str) -> App:
    """Import ``module:attribute`` and return the App it names.

    Raises:
        SystemExit: the spec is malformed or does not name an App.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise SystemExit(f"expected module:app (got {spec!r})")
    sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    app = getattr(module, attribute, None)
    if not isinstance(app, App):
        raise SystemExit(f"{spec} is not a streamflow App (got {type(app).__name__})")
    return app


def url_of(args: argparse.Namespace) -> str:
    url: str | None = args.url or os.environ.get("STREAMFLOW_REDIS_URL")
    if not url:
        raise SystemExit("no Redis URL: pass --url or set STREAMFLOW_REDIS_URL")
    return url


def load_history(args: argparse.Namespace) -> tuple[str, list[Entry], Definition]:
    if args.workflow_id.endswith(".jsonl"):  # an exported history, e.g. a CI fixture
        return import_jsonl(Path(args.workflow_id).read_text(encoding="utf-8"))
    app = connect(args)
    history = app.history(args.workflow_id)
    submitted = history[0].event
    assert isinstance(submitted, WorkflowSubmitted)
    return args.workflow_id, history, app.definitions.get(submitted.def_hash, args.workflow_id)


def event_row(entry: Entry) -> dict[str, Any]:
    event = entry.event
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name != "args"}
    return {"seq": entry.seq, "id": entry.stream_id, "type": type(event).__name__, **fields}


def duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60_000:.1f} min"


class Paint:
    """ANSI colours for a terminal; nothing at all when output goes elsewhere."""

    _STATUS = {
        "completed": "32",
        "succeeded": "32",
        "failed": "31",
        "cancelled": "35",
        "running": "33",
        "retrying": "33",
        "queued": "36",
        "awaiting": "36",
        "waiting": "2",
    }
    _EVENT = {
        "TaskSucceeded": "32",
        "WorkflowCompleted": "32",
        "TaskFailed": "31",
        "WorkflowFailed": "31",
        "WorkflowCancelled": "35",
        "HistoryWarning": "33",
    }

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: Any) -> Paint:
        return cls(stream.isatty() and not os.environ.get("NO_COLOR"))

    def _wrap(self, text: str, code: str | None) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and code else text

    def status(self, text: str, status: str) -> str:
        return self._wrap(text, self._STATUS.get(status))

    def event(self, text: str, kind: str) -> str:
        return self._wrap(text, self._EVENT.get(kind))


def connect(args: argparse.Namespace) -> App:
    """The App of a command that talks to Redis itself (``--url``, ``--prefix``)."""
    return App(url_of(args), prefix=args.prefix)
