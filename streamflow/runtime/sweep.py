"""The sweep: finds active workflows that made no progress for a while, projects them
again, and re-sends task messages that were lost (DESIGN §8).

Messages are at-least-once: a re-sent message whose attempt is running or done is
dropped by the start script, so re-sending errs on the safe side. A lone task's body
runs before its start is recorded, though, so a message is re-sent only when it is in
none of the places a message waits (queue, delayed set, parked set, a pending list) and
the log has not moved since it was read.
"""

from __future__ import annotations

from typing import Any

import redis

from streamflow.logs import get_logger
from streamflow.model import schema
from streamflow.model.definition import TaskNode
from streamflow.model.events import TaskEnqueued, WorkflowSubmitted, to_entry
from streamflow.model.lone import is_lone
from streamflow.model.messages import encode_task_message, shard_of
from streamflow.model.schema import WORKER_GROUP
from streamflow.model.signals import message_delay
from streamflow.model.state import fold_all
from streamflow.runtime.projector import Projector
from streamflow.store.connection import Store
from streamflow.store.log import iter_log

log = get_logger(__name__)
SCAN_COUNT = 200
LOOK_PAGE = 1000
"""Queue entries read at a time while looking for a message that may be lost."""
LOOK_PAGES = 20
"""At most this many pages are read (a burst of queued messages in one millisecond can
put that many ahead of it); past them it counts as lost."""


class StuckSweep:
    """Sweeps one shard's active workflows a batch at a time (keeps its scan cursor)."""

    def __init__(self, store: Store, projector: Projector, *, stuck_after_ms: int) -> None:
        self.store = store
        self.projector = projector
        self.stuck_after_ms = stuck_after_ms
        self._cursors: dict[int, int] = {}
        self._swept: dict[str, int] = {}
        """Workflow -> Redis time it was last swept (one sweep per stuck period: a
        queue nobody serves must not fill up with re-sent duplicates)."""

    def run(self, shards: tuple[int, ...]) -> int:
        """Sweep one batch per shard; returns how many messages were re-sent."""
        resent = 0
        client = self.store.client
        for shard in shards:
            scan: Any = client.sscan(
                self.store.keys.active(shard), self._cursors.get(shard, 0), count=SCAN_COUNT
            )
            self._cursors[shard] = int(scan[0])
            ids = [raw.decode() for raw in scan[1]]
            pipe = client.pipeline(transaction=False)
            for workflow_id in ids:
                pipe.xrevrange(self.store.keys.log(workflow_id), count=1)
            now = self.store.now_ms(shard)
            for workflow_id, last in zip(ids, pipe.execute(), strict=True):
                idle = now - int(last[0][0].split(b"-")[0]) if last else 0
                recently = now - self._swept.get(workflow_id, 0) < self.stuck_after_ms
                if idle >= self.stuck_after_ms and not recently:
                    self._swept[workflow_id] = now
                    log.info("stuck_workflow_swept", workflow_id=workflow_id, idle_ms=idle)
                    try:
                        self.projector.project(workflow_id, None)
                        resent += self._resend_lost(workflow_id)
                    except redis.RedisError:
                        raise  # an outage: the timer waits it out
                    except Exception:
                        # This workflow alone: the others of the batch are swept.
                        log.exception("stuck_workflow_sweep_failed", workflow_id=workflow_id)
        if len(self._swept) > 10_000:
            self._swept = {k: v for k, v in self._swept.items() if now - v < self.stuck_after_ms}
        return resent

    def _resend_lost(self, workflow_id: str) -> int:
        store = self.store
        entries = [to_entry(item) for item in iter_log(store.client, store.keys.log(workflow_id))]
        if not entries:
            return 0
        state = fold_all(entries)
        if state.terminal:
            return 0
        definition = store.definitions.get(state.def_hash, workflow_id)
        by_id = {e.stream_id: e for e in entries}
        # A lone task's first message carries its arguments: the same bytes are looked for.
        submitted = entries[0].event
        lone = None
        if isinstance(submitted, WorkflowSubmitted) and is_lone(
            definition, submitted.options, entries[0].size
        ):
            lone = submitted.args.get(0, b"")
        resent = 0
        for node, attempt in state.attempt.items():
            task = definition.task(node)
            if schema.outcome_key(node, attempt) in state.keys:
                continue
            enqueued = by_id[state.keys[schema.enqueued_key(node, attempt)]]
            assert isinstance(enqueued.event, TaskEnqueued)
            delay = message_delay(task, enqueued.event.delay_ms)
            if delay is None:
                continue  # a signal node without a timeout: it has no message
            queue = store.keys.queue(shard_of(workflow_id), task.options.queue)
            message = encode_task_message(
                workflow_id, node, attempt, definition.hash, lone if attempt == 1 else None
            )
            owner = state.owner.get(node)
            if self._still_there(workflow_id, task, message, enqueued.time_ms, delay, owner):
                continue
            if store.client.xlen(store.keys.log(workflow_id)) != len(entries):
                # It moved since the log was read (the task ended, and its message went
                # with it): not stuck. A copy now would run a lone task's body again.
                return resent
            due = enqueued.time_ms + delay
            if owner is None and due > store.now_ms(shard_of(workflow_id)):
                # Not due yet (a delay, a signal's timeout): back to the delayed set.
                delayed = store.keys.delayed(shard_of(workflow_id), task.options.queue)
                store.client.zadd(delayed, {message: due})
            else:
                store.client.xadd(queue, {schema.MESSAGE_FIELD: message})
            log.warning("lost_message_resent", workflow_id=workflow_id, node=node, attempt=attempt)
            resent += 1
        return resent

    def _still_there(
        self,
        workflow_id: str,
        task: TaskNode,
        message: bytes,
        enqueued_ms: int,
        delay: int,
        owner: str | None,
    ) -> bool:
        client, keys, shard = self.store.client, self.store.keys, shard_of(workflow_id)
        queue = keys.queue(shard, task.options.queue)
        if owner is not None:  # started: is its message still in a pending list?
            pending: Any = client.xpending_range(queue, WORKER_GROUP, min=owner, max=owner, count=1)
            return bool(pending)
        if delay and client.zscore(keys.delayed(shard, task.options.queue), message) is not None:
            return True
        # Set aside while its queue or actor is paused (it goes back when resumed); looked
        # for before and after the queue, as a worker may park it in between.
        parked = keys.parked(shard, task.options.queue, task.actor)
        if client.zscore(parked, message) is not None:
            return True
        # Queued by the script that appended its TaskEnqueued (Redis time stands still
        # within a script: the same millisecond), or by the timer once due; a message
        # is deleted only when acknowledged. It is looked for page by page from there;
        # past LOOK_PAGES pages it is re-sent anyway (a duplicate is dropped at start,
        # but a lone task's body runs before its start).
        since = f"{enqueued_ms + delay}-0"
        for _ in range(LOOK_PAGES):
            found: Any = client.xrange(queue, min=since, max="+", count=LOOK_PAGE)
            if any(fields.get(schema.MESSAGE_FIELD.encode()) == message for _, fields in found):
                return True
            if len(found) < LOOK_PAGE:
                break
            since = "(" + found[-1][0].decode()  # after the last one read
        return client.zscore(parked, message) is not None
