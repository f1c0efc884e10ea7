"""Reading a workflow's history, from its live log or from its archive."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator
from typing import Any

import redis

from streamflow import codec
from streamflow.errors import DecodeError, WorkflowNotFoundError
from streamflow.events import Entry, decode_event
from streamflow.keys import Keys

RawEntry = tuple[str, int, bytes]
"""(stream id, sequence number, encoded event) - an entry exactly as stored."""

READ_CHUNK = 1000

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryBudget:
    """How long a workflow's log may grow (Temporal's limits by default).

    Past ``warn_events`` events or ``warn_bytes`` encoded bytes, a ``HistoryWarning``
    event is recorded and logged once; past ``max_events`` or ``max_bytes``, the workflow
    fails with ``HistoryLimitExceeded`` (its ``on_failure`` callback still runs). Checked
    whenever an outcome is projected; a group member's success that decides nothing is
    not projected while the log is below the next event count the budget acts at
    (``warn_events``, then ``max_events`` once the warning is recorded), so the byte
    sizes are then checked at the next projected outcome.
    """

    warn_events: int = 10_000
    warn_bytes: int = 10 * MiB
    max_events: int = 50_000
    max_bytes: int = 50 * MiB

    def __post_init__(self) -> None:
        for name in ("warn_events", "warn_bytes", "max_events", "max_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"HistoryBudget.{name} must be a positive int (got {value!r})")
        if self.warn_events > self.max_events or self.warn_bytes > self.max_bytes:
            raise ValueError(f"a HistoryBudget must warn before its limit (got {self!r})")

    def option(self) -> list[int]:
        """The form recorded in a submission's options (``history``)."""
        return [self.warn_events, self.warn_bytes, self.max_events, self.max_bytes]


def parse_raw(raw: list[Any]) -> list[RawEntry]:
    """Stream entries as returned by XRANGE (or a script) into raw entries."""
    out: list[RawEntry] = []
    for stream_id, fields in raw:
        if isinstance(fields, dict):
            payload, seq = fields[b"e"], fields[b"s"]
        else:
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            payload, seq = values[b"e"], values[b"s"]
        sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        out.append((sid, int(seq), payload))
    return out


def to_entry(raw: RawEntry) -> Entry:
    """Decode one raw entry."""
    stream_id, seq, payload = raw
    return Entry(seq=seq, stream_id=stream_id, event=decode_event(payload), size=len(payload))


def iter_log(client: redis.Redis, key: str, after: str = "0-0") -> Iterator[RawEntry]:
    """Every entry of a live log after stream id ``after``, read in chunks."""
    while True:
        raw: Any = client.xrange(key, min=f"({after}", max="+", count=READ_CHUNK)
        chunk = parse_raw(raw)
        yield from chunk
        if len(chunk) < READ_CHUNK:
            return
        after = chunk[-1][0]


ARCHIVE_LAYOUT = 2


def encode_archive(entries: list[RawEntry]) -> bytes:
    """One compressed string holding a whole log (sequence numbers dense from 1).

    Layout 2, a flat array: ``[2, first entry's ms, then per entry: ms after the first,
    the stream id's sequence part, the encoded event]`` - stream ids as small integers,
    sequence numbers implied. (Layout 1, still read, is ``[[stream id, seq, event], ...]``.)
    """
    flat: list[Any] = [ARCHIVE_LAYOUT, 0]
    base: int | None = None
    for sid, _, payload in entries:
        ms, _, part = sid.partition("-")
        if base is None:
            base = flat[1] = int(ms)
        flat += [int(ms) - base, int(part), payload]
    return codec.encode(flat)


SUMMARY = struct.Struct(">BBHIII")
"""An archive's summary (written by the scripts, see ``_lib.lua``): marker 0x53, status,
submission ms (6 bytes: high 2, low 4), ms from it to the end, log length at the end."""
SUMMARY_MARKER = 0x53
_SUMMARY_STATUS = {1: "completed", 2: "failed", 3: "cancelled"}


@dataclasses.dataclass(frozen=True, slots=True)
class ArchiveSummary:
    """What a listing shows of an archived workflow."""

    status: str
    submitted_ms: int
    ended_ms: int
    events: int


def archive_summary(head: bytes) -> ArchiveSummary | None:
    """The summary at the start of an archive (its first ``SUMMARY.size`` bytes), or None
    for an archive written without one."""
    if len(head) < SUMMARY.size or head[0] != SUMMARY_MARKER:
        return None
    _, status, high, low, took, events = SUMMARY.unpack_from(head)
    if status not in _SUMMARY_STATUS:
        return None
    submitted = high << 32 | low
    return ArchiveSummary(_SUMMARY_STATUS[status], submitted, submitted + took, events)


def decode_archive(data: bytes) -> list[RawEntry]:
    """Inverse of ``encode_archive`` (and of the apply script's inline archive, whose
    strings arrive as bytes), after the summary the scripts put first.

    Raises:
        DecodeError: not a workflow archive.
    """
    if data[:1] == bytes([SUMMARY_MARKER]):
        data = data[SUMMARY.size :]
    raw = codec.decode(data)
    if isinstance(raw, list) and raw and raw[0] == ARCHIVE_LAYOUT and len(raw) % 3 == 2:
        base = raw[1]
        return [
            (f"{base + raw[i]}-{raw[i + 1]}", (i + 1) // 3, raw[i + 2])
            for i in range(2, len(raw), 3)
        ]
    if not isinstance(raw, list) or not all(isinstance(e, list) and len(e) == 3 for e in raw):
        raise DecodeError("not a workflow archive", data)
    return [
        (sid.decode() if isinstance(sid, bytes) else sid, int(seq), payload)
        for sid, seq, payload in raw
    ]


def read_raw(client: redis.Redis, keys: Keys, workflow_id: str) -> tuple[list[RawEntry], bool]:
    """A workflow's whole log, and whether it came from the archive.

    Raises:
        WorkflowNotFoundError: neither a log nor an archive exists.
    """
    for _ in range(3):
        archived: Any = client.get(keys.archive(workflow_id))
        if archived is not None:
            return decode_archive(archived), True
        entries = list(iter_log(client, keys.log(workflow_id)))
        # A log archived while we read it is gone (XLEN 0): read the archive instead.
        if entries and client.xlen(keys.log(workflow_id)) >= len(entries):
            return entries, False
    raise WorkflowNotFoundError(workflow_id)


def read_history(client: redis.Redis, keys: Keys, workflow_id: str) -> list[Entry]:
    """A workflow's events, in order, from its live log or its archive."""
    raw, _ = read_raw(client, keys, workflow_id)
    return [to_entry(item) for item in raw]
