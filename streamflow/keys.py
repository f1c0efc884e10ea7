"""The keyspace (DESIGN §5). Every key name is built here and nowhere else.

A workflow's shard is fixed at submit and encoded in its id (``<shard>-<hex>``); every
key of the workflow and its shard's shared keys carry the hash tag ``{<shard>}`` so one
script can touch one workflow and its shard's queues atomically on Redis Cluster.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import secrets

from streamflow import codec

WORKER_GROUP = "workers"
PROJECTOR_GROUP = "projectors"
_WORKFLOW_ID = re.compile(r"([0-9]+)-[0-9a-f]+", re.ASCII)


def new_workflow_id(shard: int) -> str:
    """A fresh workflow id on ``shard`` (96 random bits, drawn by the shell)."""
    return f"{shard}-{secrets.token_hex(12)}"


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


def encode_task_message(workflow_id: str, node: int, attempt: int, def_hash: str) -> bytes:
    """A queue message: references only, a few dozen bytes whatever the workflow's size."""
    return codec.encode([workflow_id, node, attempt, bytes.fromhex(def_hash)])


def decode_task_message(data: bytes) -> tuple[str, int, int, str]:
    """Inverse of ``encode_task_message``.

    Raises:
        DecodeError: bytes that are not a task message.
    """
    from streamflow.errors import DecodeError

    raw = codec.decode(data)
    if (
        not isinstance(raw, list)
        or len(raw) != 4
        or not isinstance(raw[0], str)
        or not isinstance(raw[1], int)
        or not isinstance(raw[2], int)
        or not isinstance(raw[3], bytes)
    ):
        raise DecodeError(f"not a task message: {raw!r:.80}", data)
    return raw[0], raw[1], raw[2], raw[3].hex()


def encode_wake(workflow_id: str, tag: str) -> bytes:
    """A recovery wake-up for ``workflow_id``; ``tag`` (e.g. ``out:3:1``) keeps it unique."""
    return codec.encode([workflow_id, tag])


def decode_wake(data: bytes) -> tuple[str, str]:
    """Inverse of ``encode_wake``."""
    from streamflow.errors import DecodeError

    raw = codec.decode(data)
    if not isinstance(raw, list) or len(raw) != 2 or not isinstance(raw[0], str):
        raise DecodeError(f"not a wake-up: {raw!r:.80}", data)
    return raw[0], str(raw[1])


@dataclasses.dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix (default ``sf``)."""

    prefix: str = "sf"

    def log(self, wf: str) -> str:
        return f"{self.prefix}:{{{shard_of(wf)}}}:{wf}:log"

    def idx(self, wf: str) -> str:
        return f"{self.prefix}:{{{shard_of(wf)}}}:{wf}:idx"

    def archive(self, wf: str) -> str:
        return f"{self.prefix}:{{{shard_of(wf)}}}:{wf}:archive"

    def results(self, wf: str) -> str:
        """Out-of-line results too large for the log: field ``<node>:<attempt>``."""
        return f"{self.prefix}:{{{shard_of(wf)}}}:{wf}:results"

    def tombstone(self, wf: str) -> str:
        """Left behind (with a TTL) when a finished workflow is removed after retention."""
        return f"{self.prefix}:{{{shard_of(wf)}}}:{wf}:expired"

    def done_channel(self, wf: str) -> str:
        """Pub/sub channel told when the workflow ends (not a key)."""
        return f"{self.prefix}:{{{shard_of(wf)}}}:{wf}:done"

    def definition(self, def_hash: str) -> str:
        return f"{self.prefix}:def:{def_hash}"

    def queue(self, shard: int, queue: str) -> str:
        return f"{self.prefix}:{{{shard}}}:q:{queue}"

    def delayed(self, shard: int, queue: str) -> str:
        return f"{self.prefix}:{{{shard}}}:delayed:{queue}"

    def wake(self, shard: int) -> str:
        return f"{self.prefix}:{{{shard}}}:wake"

    def wake_due(self, shard: int) -> str:
        return f"{self.prefix}:{{{shard}}}:wake-due"

    def expiry(self, shard: int) -> str:
        """Finished workflows by the time their retention ends."""
        return f"{self.prefix}:{{{shard}}}:expiry"

    def ended(self, shard: int) -> str:
        """Workflows that ended, until their retention: id -> ``status submitted ended
        events`` (times in ms; the log's length at the end), for listing them."""
        return f"{self.prefix}:{{{shard}}}:ended"

    def active(self, shard: int) -> str:
        return f"{self.prefix}:{{{shard}}}:active"

    def limiter(self, name: str) -> str:
        return f"{self.prefix}:limit:{name}"

    def dead(self) -> str:
        return f"{self.prefix}:dead"
