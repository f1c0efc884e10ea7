"""The checks the stateful Redis test (``proptests.test_redis_machine``) runs on each
workflow, ``Watched``. After every step its log, read from Redis (the live stream or its
archive), is checked entry by entry (``Checker``: contract items 1 and 2, one outcome per
attempt, the reference results), by ``audit`` and ``replay``; every start of an attempt
names one message; an archived workflow has no live keys left, an ended one not yet
archived has a wake-up left to archive it, and while the log is live the index the
scripts keep equals the pure fold's (contract 5). After the drain, ``check_finished``:
archived, with the reference result (or failed for the planned reason), and the read
path agrees.
"""

from __future__ import annotations

import pytest

from proptests.checker import Checker
from proptests.redis_driver import SHARD, Cluster
from proptests.redis_records import Tracked, expected_index
from proptests.simulator import evaluate, task_ids
from streamflow.history.audit import audit, replay
from streamflow.model.definition import Definition
from streamflow.model.errors import ResultFailure
from streamflow.model.events import TERMINAL, TaskStarted, WorkflowFailed, WorkflowResumed
from streamflow.model.schema import COMPLETED, FAILED
from streamflow.model.state import fold_all


class Watched:
    """One workflow: its tracked log, and the checks run on every new read of it."""

    def __init__(self, tracked: Tracked, definition: Definition) -> None:
        self.tracked = tracked
        self.definition = definition
        self.expected = evaluate(tracked.case.canvas)
        self.checker = Checker(tracked.case, self.expected)
        self.sent: set[str] = set()
        """Signals this workflow recorded."""
        self.resumes = 0

    def check(self, cluster: Cluster) -> None:
        tracked, d = self.tracked, self.definition
        wf = tracked.workflow_id
        entries, archived = cluster.read(tracked)
        before = tracked.entries
        assert entries[: len(before)] == before, f"{wf}: the log changed under its readers"
        assert not (tracked.archived and not archived), f"{wf}: archive gone"
        tracked.entries, tracked.archived = entries, archived
        self.checker.feed(entries)
        violations = audit(entries, d)
        assert violations == [], f"{wf}: audit: {violations}"
        divergences = replay(entries, d)
        assert divergences == [], f"{wf}: replay: {divergences}"
        owners: dict[tuple[int, int], str] = {}
        for entry in entries:
            event = entry.event
            if isinstance(event, TaskStarted):
                # A second message of one attempt is a DUP: only its owner restarts it,
                # unless the owner was lost and the sweep's copy took the attempt over.
                if event.takeover:
                    owners[(event.node, event.attempt)] = event.msg_id
                owner = owners.setdefault((event.node, event.attempt), event.msg_id)
                assert owner == event.msg_id, f"{wf}: seq {entry.seq} started by a duplicate"
        state = fold_all(entries)
        client, keys = cluster.client, cluster.keys
        active = client.sismember(keys.active(SHARD), wf)
        if archived:
            assert state.terminal, f"{wf}: archived while {state.status}"
            assert not client.exists(keys.log(wf), keys.idx(wf)), f"{wf}: live keys remain"
            assert not active, f"{wf}: archived but still active"
            return
        if state.terminal:
            # Ended but not archived: a recovery projection applied the end together
            # with enqueues of other causes (decide_all), and finished() counts those as
            # pending. Only a later projection archives it: a wake-up must be left.
            assert not active, f"{wf}: ended but still active"
            assert cluster.wake_ups(wf), f"{wf}: ended, not archived, and nothing will"
            cluster.stats["ended with its archive left to a later wake-up"] += 1
            return
        assert active, f"{wf}: running but not in the active set"
        index = cluster.index(wf)
        if index:  # else deleted by a rule; the next script answers REBUILD
            expected = expected_index(entries, self.definition)
            assert index == expected, _index_diff(wf, index, expected)

    def check_finished(self, cluster: Cluster) -> str:
        """After the drain: archived, the reference outcome, the read path agrees."""
        self.check(cluster)
        tracked, case = self.tracked, self.tracked.case
        wf, entries = tracked.workflow_id, tracked.entries
        assert tracked.archived, f"{wf}: not archived after the drain"
        terminals = [e for e in entries if isinstance(e.event, TERMINAL)]
        resumes = [e for e in entries if isinstance(e.event, WorkflowResumed)]
        assert len(terminals) == 1 + len(resumes) and terminals[-1] is entries[-1], (
            f"{wf}: {terminals}"
        )
        state = fold_all(entries)
        client, keys = cluster.client, cluster.keys
        expiring = client.zscan_iter(keys.expiry(SHARD), match=f"{wf} *")
        assert any(True for _ in expiring), f"{wf}: no expiry"
        assert client.exists(keys.definition(SHARD, self.definition.hash)), "definition deleted"
        handle = cluster.handle(wf)
        if case.fails_for_good and not self.resumes:
            assert state.status == FAILED, f"{wf}: {state.status}, planned to fail"
            end = entries[-1].event
            assert isinstance(end, WorkflowFailed)
            node = end.error["node"]
            assert case.fail_until[node] == end.error["attempt"], end.error
            with pytest.raises(ResultFailure):
                handle.get_result()
        else:
            assert state.status == COMPLETED, f"{wf}: {state.status}: {state.end}"
            assert handle.get_result() == self.expected.value
            expected = dict(zip(task_ids(self.definition), self.expected.values, strict=True))
            assert state.results == expected
        return state.status


def _index_diff(wf: str, index: dict[str, bytes], expected: dict[str, bytes]) -> str:
    diff = {
        k: (index.get(k), expected.get(k))
        for k in sorted(set(index) | set(expected))
        if index.get(k) != expected.get(k)
    }
    return f"{wf}: index != fold of the log; field: (redis, fold): {diff}"
