"""The faults ``Cluster`` plays on a real Redis between its steps, one move each: a process
killed (SIGKILL), a queue message duplicated or lost, a projection of an old cause run
again by a possibly stale cache, and the index deleted. A mixin of ``Cluster``, which
has the processes, the connection and the workflows these moves act on.
"""

from __future__ import annotations

import collections
import contextlib
from typing import TYPE_CHECKING, Any

from proptests.redis_process import Process
from proptests.redis_records import QueueMessage, Tracked
from proptests.simulator import DECIDABLE
from streamflow.model.events import Entry
from streamflow.model.messages import decode_task_message
from streamflow.model.schema import WORKER_GROUP
from streamflow.model.state import fold_all
from streamflow.store.keys import Keys


class Faults:
    """``Cluster``'s faults, one move each (a mixin: it has the processes, the connection
    and the workflows)."""

    procs: list[Process]
    stats: collections.Counter[str]
    client: Any
    keys: Keys
    workflows: list[Tracked]

    if TYPE_CHECKING:  # the Cluster's own, which this mixin calls

        def _spawn(self, index: int | None = None) -> Process: ...

        def running(
            self, index: int, point: str | None = None
        ) -> contextlib.AbstractContextManager[Process]: ...

        def messages(self) -> list[QueueMessage]: ...

        def read(self, tracked: Tracked) -> tuple[list[Entry], bool]: ...

    def kill(self, index: int) -> None:
        """The process dies (SIGKILL): in-flight jobs and cache lost, messages pending."""
        proc = self.procs[index]
        self.stats["killed with jobs in flight"] += bool(proc.pool.items)
        proc.pool.items.clear()
        proc.close()
        self.procs[index] = self._spawn(index)

    def duplicate(self, pick: int) -> None:
        """At-least-once: a message is in its queue twice (a new id, same bytes)."""
        found = self.messages()
        if found:
            m = found[pick % len(found)]
            self.client.xadd(m.queue, {"m": m.data})
            self.stats["duplicated"] += 1

    def lose_message(self, pick: int, *, owners: bool = False) -> None:
        """A queue message vanishes (XACK + XDEL by someone else, a failover): the sweep
        must notice and re-send it. ``owners``: also a message that started its attempt
        (see ``test_sweep_resends_a_lost_started_message``)."""
        found = self.messages()
        if not owners:
            found = [m for m in found if not self._owns_its_attempt(m.msg_id, m.data)]
        if found:
            m = found[pick % len(found)]
            self.client.xack(m.queue, WORKER_GROUP, m.msg_id)
            self.client.xdel(m.queue, m.msg_id)
            self.stats["messages lost"] += 1

    def _owns_its_attempt(self, msg_id: str, data: bytes) -> bool:
        workflow_id, node, attempt, _ = decode_task_message(data)
        tracked = next(t for t in self.workflows if t.workflow_id == workflow_id)
        state = fold_all(self.read(tracked)[0])
        return state.attempt.get(node) == attempt and state.owner.get(node) == msg_id

    def project_again(self, index: int, pick: int) -> None:
        """A projection of an old cause runs again (a slow thread, a redelivered wake-up):
        the real projector with this process's (possibly stale) cache."""
        causes = [
            (t.workflow_id, e)
            for t in self.workflows
            if not t.archived
            for e in t.entries
            if isinstance(e.event, DECIDABLE)
        ]
        if causes:
            workflow_id, cause = causes[pick % len(causes)]
            with self.running(index) as proc:
                proc.app.projector.project(workflow_id, cause)
                self.stats["projected again"] += 1

    def delete_index(self, pick: int) -> None:
        """Contract 5: the index is derived; delete it (the next script says REBUILD)."""
        live = [t for t in self.workflows if not t.archived]
        if live:
            self.client.delete(self.keys.idx(live[pick % len(live)].workflow_id))
            self.stats["index deleted"] += 1
