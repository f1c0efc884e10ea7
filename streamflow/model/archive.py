"""A finished workflow's archive: its whole log in one compressed string, behind a
16-byte summary for listings."""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

from streamflow.model import codec
from streamflow.model.errors import DecodeError
from streamflow.model.events import RawEntry
from streamflow.model.schema import ARCHIVE_STATUS_CODES

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


_SUMMARY_STATUS = {code: status for status, code in ARCHIVE_STATUS_CODES.items()}


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
