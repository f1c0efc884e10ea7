"""Values as the dashboard shows them: anything a task took or returned made JSON-ready,
and cut short where it is long (a page shows a glimpse; the CLI and the API's history
show all)."""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Any

from streamflow.model import codec
from streamflow.model.errors import DecodeError
from streamflow.model.messages import decode_task

MAX_TEXT = 2000
"""Characters of a string shown at most."""
MAX_ITEMS = 50
"""Items of a list or a dict shown at most."""
MAX_DEPTH = 12
"""Nesting shown at most."""


def jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON can carry it: containers kept (cut to ``MAX_ITEMS``), strings
    cut to ``MAX_TEXT``, dataclasses as dicts, anything else as its ``repr``."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + f"… ({len(value)} chars)"
    if depth >= MAX_DEPTH:
        return "…"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value), depth)
    if isinstance(value, list | tuple):
        items = [jsonable(item, depth + 1) for item in value[:MAX_ITEMS]]
        return items + ([f"… {len(value) - MAX_ITEMS} more"] if len(value) > MAX_ITEMS else [])
    if isinstance(value, dict):
        pairs = list(value.items())
        shown = {str(k): jsonable(v, depth + 1) for k, v in pairs[:MAX_ITEMS]}
        if len(pairs) > MAX_ITEMS:
            shown["…"] = f"{len(pairs) - MAX_ITEMS} more"
        return shown
    return jsonable(repr(value), depth)


def call_arguments(encoded: bytes | None) -> dict[str, Any]:
    """A task's arguments as submitted (``codec.encode([args, kwargs])``; None: it had
    none), as ``{"args": [...], "kwargs": {...}}``; ``error`` if they cannot be read."""
    if encoded is None:
        return {"args": [], "kwargs": {}}
    try:
        args, kwargs = codec.decode(encoded)
    except (DecodeError, TypeError, ValueError) as exc:
        return {"error": f"unreadable arguments: {exc}"}
    return {"args": jsonable(args), "kwargs": jsonable(kwargs)}


def message_contents(data: bytes) -> dict[str, Any]:
    """What a dead letter's bytes say, as far as they can be read: a task message (its
    workflow, node, attempt), another value, or why not."""
    try:
        task = decode_task(data)
    except DecodeError:
        pass
    else:
        return {
            "kind": "task",
            "workflow_id": task.workflow_id,
            "node": task.node,
            "attempt": task.attempt,
            "def_hash": task.def_hash,
        }
    try:
        return {"kind": "value", "value": jsonable(codec.decode(data))}
    except DecodeError as exc:
        return {"kind": "unreadable", "error": str(exc)}


def parse_time(text: str, name: str) -> int:
    """A time filter as Unix milliseconds: an ISO 8601 date and time (UTC unless it says
    otherwise, e.g. ``2026-12-07T13:05`` or ``...+01:00``) or a number of milliseconds.

    Raises:
        ValueError: neither, naming the parameter and the value.
    """
    if text.isdigit():
        return int(text)
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{name} must be an ISO 8601 time like 2026-12-07T13:05:00Z or Unix "
            f"milliseconds (got {text!r})"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp() * 1000)
