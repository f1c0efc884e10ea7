"""A workflow's history as JSON lines: export it, and import it back elsewhere."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

from streamflow.model.definition import Definition
from streamflow.model.errors import DecodeError
from streamflow.model.events import (
    Entry,
    decode_event,
    encode_event,
)

EXPORT_FORMAT = "streamflow-history"


EXPORT_VERSION = 1


def export_jsonl(workflow_id: str, entries: Sequence[Entry], definition: Definition) -> str:
    """A history as JSON Lines (schema version 1), to keep as a test fixture.

    Line 1: ``{"format": "streamflow-history", "version": 1, "workflow_id", "definition"}``
    (the definition's stored bytes, base64). Then one line per event: ``{"seq", "id",
    "type", "event", "size"}`` (``event``: its encoding, base64; ``size``: the size it had
    in the log, which the history budget counts; ``type`` is for people).
    """
    header = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "workflow_id": workflow_id,
        "definition": base64.b64encode(definition.to_bytes).decode(),
    }
    lines = [json.dumps(header)]
    for entry in entries:
        lines.append(
            json.dumps(
                {
                    "seq": entry.seq,
                    "id": entry.stream_id,
                    "type": type(entry.event).__name__,
                    "event": base64.b64encode(encode_event(entry.event)).decode(),
                    "size": entry.size,
                }
            )
        )
    return "\n".join(lines) + "\n"


def import_jsonl(text: str) -> tuple[str, list[Entry], Definition]:
    """Inverse of ``export_jsonl``: (workflow id, entries, definition).

    Raises:
        DecodeError: not a streamflow history export of a known version.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        header = json.loads(lines[0])
        if header.get("format") != EXPORT_FORMAT or header.get("version") != EXPORT_VERSION:
            raise ValueError(f"format {header.get('format')!r} version {header.get('version')!r}")
        definition = Definition.from_bytes(base64.b64decode(header["definition"]))
        entries = []
        for line in lines[1:]:
            row = json.loads(line)
            event = decode_event(base64.b64decode(row["event"]))
            entries.append(
                Entry(
                    seq=int(row["seq"]),
                    stream_id=str(row["id"]),
                    event=event,
                    size=int(row.get("size", 0)),
                )
            )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise DecodeError(f"not a streamflow history export: {exc}", text.encode()) from exc
    return str(header["workflow_id"]), entries, definition
