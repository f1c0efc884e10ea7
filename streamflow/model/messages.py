"""What travels in queue and wake-up streams (references only, a few dozen bytes), and
the shard a workflow id names."""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

from streamflow.model import codec
from streamflow.model.errors import DecodeError

_WORKFLOW_ID = re.compile(r"([0-9]+)-[0-9a-f]+", re.ASCII)


@functools.lru_cache(maxsize=4096)
def shard_of(workflow_id: str) -> int:
    """The shard a workflow id names (cached: the worker asks many times per task).

    Raises:
        ValueError: the id is not of the form ``<shard>-<hex>``.
    """
    match = _WORKFLOW_ID.fullmatch(workflow_id)
    if match is None:
        raise ValueError(f"workflow id must look like '<shard>-<hex>' (got {workflow_id!r})")
    return int(match[1])


def encode_task_message(
    workflow_id: str, node: int, attempt: int, def_hash: str, lone: bytes | None = None
) -> bytes:
    """A queue message: references only, a few dozen bytes whatever the workflow's size;
    a lone task's (``model.lone``) also carries its encoded arguments (``lone``, empty
    without arguments)."""
    raw: list[Any] = [workflow_id, node, attempt, bytes.fromhex(def_hash)]
    if lone is not None:
        raw.append(lone)
    return codec.encode(raw)


class TaskMessage(NamedTuple):
    """A decoded queue message."""

    workflow_id: str
    node: int
    attempt: int
    def_hash: str
    lone: bytes | None
    """A lone task's encoded arguments (empty: none); None for any other task."""


def decode_task(data: bytes) -> TaskMessage:
    """Inverse of ``encode_task_message``.

    Raises:
        DecodeError: bytes that are not a task message.
    """
    raw = codec.decode(data)
    if (
        not isinstance(raw, list)
        or len(raw) not in (4, 5)
        or not isinstance(raw[0], str)
        or not _WORKFLOW_ID.fullmatch(raw[0])
        or type(raw[1]) is not int
        or type(raw[2]) is not int
        or raw[1] < 0
        or raw[2] < 1
        or not isinstance(raw[3], bytes)
        or len(raw[3]) != 16
        or (len(raw) == 5 and not isinstance(raw[4], bytes))
    ):
        raise DecodeError(f"not a task message: {raw!r:.80}", data)
    return TaskMessage(raw[0], raw[1], raw[2], raw[3].hex(), raw[4] if len(raw) == 5 else None)


def decode_task_message(data: bytes) -> tuple[str, int, int, str]:
    """Workflow id, node, attempt and definition hash of a task message (see
    ``decode_task``).

    Raises:
        DecodeError: bytes that are not a task message.
    """
    message = decode_task(data)
    return message.workflow_id, message.node, message.attempt, message.def_hash


def encode_wake(workflow_id: str, tag: str) -> bytes:
    """A recovery wake-up for ``workflow_id``; ``tag`` (e.g. ``out:3:1``) keeps it unique."""
    return codec.encode([workflow_id, tag])


def decode_wake(data: bytes) -> tuple[str, str]:
    """Inverse of ``encode_wake``."""
    raw = codec.decode(data)
    if (
        not isinstance(raw, list)
        or len(raw) != 2
        or not isinstance(raw[0], str)
        or not _WORKFLOW_ID.fullmatch(raw[0])
    ):
        raise DecodeError(f"not a wake-up: {raw!r:.80}", data)
    return raw[0], str(raw[1])
