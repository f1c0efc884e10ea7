"""The keyspace (DESIGN §5). Every key name is built here and nowhere else.

A workflow's shard is fixed at submit and encoded in its id (``<shard>-<hex>``); every
key of the workflow and its shard's shared keys carry the shard's hash tag
(``shard_tag``), so one script can touch one workflow and its shard's queues atomically
on Redis Cluster, and shards spread evenly over the cluster's masters.
"""

from __future__ import annotations

import binascii
import dataclasses
import functools
import secrets

from streamflow.model.messages import shard_of

WORKFLOW_KEYS_KEPT = 4096
CLUSTER_SLOTS = 16384
_BUCKETS = 1024
"""Slot ranges a shard's tag is placed in: 16 slots each."""


@functools.cache
def shard_tag(shard: int) -> str:
    """The hash tag of ``shard``'s keys: ``<shard>.<k>``, the first ``k`` whose slot
    (CRC16 mod 16384, as Redis Cluster hashes it) falls in the shard's range.

    Shard ``i``'s range is ``i`` (mod 1024) with its ten bits reversed, times 16: the
    first 2**n shards sit at evenly spaced slots for every n, and any count is close to
    even. A cluster whose masters own even slot ranges (what ``redis-cli --cluster
    create`` makes) gets an even share of the shards; moving a slot moves whole shards.
    Fixed forever: the tag is part of every key name.
    """
    if shard < 0:
        raise ValueError(f"a shard is a number from 0 (got {shard!r})")
    width = CLUSTER_SLOTS // _BUCKETS
    low = int(format(shard % _BUCKETS, "010b")[::-1], 2) * width
    k = 0
    while not low <= slot_of(f"{shard}.{k}") < low + width:
        k += 1
    return f"{shard}.{k}"


def slot_of(tag: str) -> int:
    """The cluster slot of a key whose hash tag (or whole name) is ``tag``."""
    return binascii.crc_hqx(tag.encode(), 0) % CLUSTER_SLOTS


def new_workflow_id(shard: int) -> str:
    """A fresh workflow id on ``shard`` (96 random bits, drawn by the shell)."""
    return f"{shard}-{secrets.token_hex(12)}"


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowKeys:
    """Every key of one workflow, and its shard's shared keys (what its scripts touch)."""

    workflow_id: str
    log: str
    idx: str
    archive: str
    results: str
    tombstone: str
    done_channel: str
    """Not a key: the pub/sub channel told when it ends."""
    active: str
    wake_due: str
    expiry: str
    ended: str
    submitted: str


class Keys:
    """Key names under one prefix (default ``sf``)."""

    __slots__ = ("_workflows", "prefix")

    def __init__(self, prefix: str = "sf") -> None:
        self.prefix = prefix
        self._workflows: dict[str, WorkflowKeys] = {}

    def __repr__(self) -> str:
        return f"Keys({self.prefix!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Keys) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)

    def workflow(self, wf: str) -> WorkflowKeys:
        """The keys of workflow ``wf`` (kept for the most recent workflows: a worker asks
        several times per task)."""
        found = self._workflows.get(wf)
        if found is None:
            if len(self._workflows) >= WORKFLOW_KEYS_KEPT:
                self._workflows.clear()
            found = self._workflows[wf] = self._of(wf)
        return found

    def _of(self, wf: str) -> WorkflowKeys:
        shard = shard_of(wf)
        return WorkflowKeys(
            workflow_id=wf,
            log=self.log(wf),
            idx=self.idx(wf),
            archive=self.archive(wf),
            results=self.results(wf),
            tombstone=self.tombstone(wf),
            done_channel=self.done_channel(wf),
            active=self.active(shard),
            wake_due=self.wake_due(shard),
            expiry=self.expiry(shard),
            ended=self.ended(shard),
            submitted=self.submitted(shard),
        )

    def log(self, wf: str) -> str:
        return f"{self.prefix}:{{{shard_tag(shard_of(wf))}}}:{wf}:log"

    def idx(self, wf: str) -> str:
        return f"{self.prefix}:{{{shard_tag(shard_of(wf))}}}:{wf}:idx"

    def archive(self, wf: str) -> str:
        return f"{self.prefix}:{{{shard_tag(shard_of(wf))}}}:{wf}:archive"

    def results(self, wf: str) -> str:
        """Out-of-line results too large for the log: field ``<node>:<attempt>``."""
        return f"{self.prefix}:{{{shard_tag(shard_of(wf))}}}:{wf}:results"

    def tombstone(self, wf: str) -> str:
        """Left behind (with a TTL) when a finished workflow is removed after retention."""
        return f"{self.prefix}:{{{shard_tag(shard_of(wf))}}}:{wf}:expired"

    def done_channel(self, wf: str) -> str:
        """Pub/sub channel told when the workflow ends (not a key)."""
        return f"{self.prefix}:{{{shard_tag(shard_of(wf))}}}:{wf}:done"

    def done_pattern(self) -> str:
        """Every workflow's done channel, as a PSUBSCRIBE pattern."""
        prefix = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.prefix)
        return f"{prefix}:*:done"

    def definition(self, shard: int, def_hash: str) -> str:
        """A workflow definition, stored once per shard that runs workflows of it."""
        return f"{self.prefix}:{{{shard_tag(shard)}}}:def:{def_hash}"

    def definitions(self, shard: int) -> str:
        """Per definition hash, how many of the shard's kept workflows use it (the last
        one's removal removes the definition); field ``_`` marks the shard's definitions
        as tracked (gone only if Redis lost its data)."""
        return f"{self.prefix}:{{{shard_tag(shard)}}}:defs"

    def queue(self, shard: int, queue: str) -> str:
        return f"{self.prefix}:{{{shard_tag(shard)}}}:q:{queue}"

    def delayed(self, shard: int, queue: str) -> str:
        return f"{self.prefix}:{{{shard_tag(shard)}}}:delayed:{queue}"

    def parked(self, shard: int, queue: str, actor: str) -> str:
        """Messages of ``actor`` on ``queue`` set aside while it (or the queue) is
        paused: member = the queue message, score = when it was parked."""
        return f"{self.prefix}:{{{shard_tag(shard)}}}:parked:{queue}:{actor}"

    def parked_index(self, shard: int) -> str:
        """The shard's parked sets, as ``queue:actor`` entries."""
        return f"{self.prefix}:{{{shard_tag(shard)}}}:parked"

    def paused(self) -> str:
        """What is paused, every shard: ``queue:<name>`` and ``actor:<name>``."""
        return f"{self.prefix}:paused"

    def wake(self, shard: int) -> str:
        return f"{self.prefix}:{{{shard_tag(shard)}}}:wake"

    def wake_due(self, shard: int) -> str:
        return f"{self.prefix}:{{{shard_tag(shard)}}}:wake-due"

    def expiry(self, shard: int) -> str:
        """Finished workflows by the time their retention ends."""
        return f"{self.prefix}:{{{shard_tag(shard)}}}:expiry"

    def submitted(self, shard: int) -> str:
        """Every workflow kept, by the Redis time of its submission (ms): listings read
        the newest from it, never the whole shard."""
        return f"{self.prefix}:{{{shard_tag(shard)}}}:submitted"

    def submitted_indexed(self, shard: int) -> str:
        """Set once the workflows kept from before the submitted index are in it."""
        return f"{self.prefix}:{{{shard_tag(shard)}}}:submitted-indexed"

    def ended(self, shard: int) -> str:
        """Workflows that ended, until their retention: id -> ``status submitted ended
        events`` (times in ms; the log's length at the end), for listing them."""
        return f"{self.prefix}:{{{shard_tag(shard)}}}:ended"

    def beats(self, shard: int) -> str:
        """Worker processes' heartbeats: consumer name -> Redis time of its last beat."""
        return f"{self.prefix}:{{{shard_tag(shard)}}}:beats"

    def active(self, shard: int) -> str:
        return f"{self.prefix}:{{{shard_tag(shard)}}}:active"

    def limiter(self, name: str) -> str:
        return f"{self.prefix}:limit:{name}"

    def workers(self) -> str:
        """The worker processes' cards: consumer name -> what it is and how busy, as
        JSON (``store.roster``)."""
        return f"{self.prefix}:workers"

    def schedules(self) -> str:
        """The names of the schedules workers have registered (``store.schedules``)."""
        return f"{self.prefix}:schedules"

    def schedule(self, name: str) -> str:
        """A schedule's settings and state: its cursor, counts, last run."""
        return f"{self.prefix}:schedule:{{{name}}}"

    def schedule_pending(self, name: str) -> str:
        """A schedule's ticks to submit: tick -> when its lease ends (ms)."""
        return f"{self.prefix}:schedule:{{{name}}}:pending"

    def stats(self, minute: int) -> str:
        """What workers did in one minute (of the Redis clock, counted from the epoch):
        counters flushed by each worker (``store.stats``)."""
        return f"{self.prefix}:stats:{minute}"

    def shard_count(self) -> str:
        """How many shards the workflows under this prefix are spread over (set by the
        first App or worker; every other must have the same)."""
        return f"{self.prefix}:shards"

    def dead(self) -> str:
        return f"{self.prefix}:dead"
