"""A stateful test of the real shell on a real Redis: scripts, worker steps, projector.

``proptests.test_core`` checks the pure core against an in-memory model of the scripts;
this machine drives the real thing step by step from the test thread (see
``proptests.redis_driver``): the Lua scripts via ``Scripts``, the real ``Projector``, and
the worker's own ``_dispatch``/``_claim_stale``/``_run_sync``/``_reproject``, its thread
pool replaced by a list the rules pick from. Two worker processes (one making decisions
ahead of its outcomes when it can, one never), up to three random workflows.

Rules: ``deliver`` (a batch of new messages: start script), ``run_job`` (body, outcome
script, inline projection, ack), ``redeliver`` (XCLAIM of one pending message),
``claim_after_lease`` (the worker's XAUTOCLAIM), ``recover`` (a wake-up falls due; the
recovery projector, or a claim of its unacknowledged wake-ups), ``project_again`` (an
old cause, a lagging cache), ``housekeeping`` (timer, lease renewal, stuck sweep) and
``fault`` (a process dies, a message is duplicated or lost, the index is deleted).
Crash points (``streamflow.faults``) fire inside the steps: after start, after the body,
between outcome and projection, before apply, after a recovery projection. (There is no
window between apply and dispatch: the apply script adds the queue messages and
acknowledges the trigger itself.)

After every step each workflow's log (read from Redis: the live stream or its archive)
is checked entry by entry (``Checker``: contract items 1 and 2, one outcome per attempt,
the reference results), by ``audit`` and ``replay``; every start of an attempt names
one message; while the log is live the index the scripts keep equals the pure fold's
(contract 5) (those checks: ``proptests.redis_checks``) and every projector cache is a
fold of a prefix of the log. At the end
everything is drained without faults: each workflow is archived with the reference
result (or fails for the planned reason), its live keys are gone, and nothing is left
in any queue, pending list, delayed set or wake-up set.
"""

from __future__ import annotations

import collections
import itertools
import sys
import time
from typing import Any

import hypothesis
import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from proptests.redis_checks import Watched
from proptests.redis_driver import SHARD, Cluster
from proptests.redis_process import crash_points
from proptests.redis_records import Planned
from proptests.simulator import SIGNALS, Case, F, cases, child_cases, payload_of, signal_cases
from streamflow.api.compile import compile_canvas
from streamflow.model.errors import ResumeError, SignalError
from streamflow.model.events import SignalReceived
from streamflow.model.schema import FAILED
from streamflow.model.state import fold_all
from streamflow.store.cluster import connect

_URL: list[str] = []
"""The session's Redis URL, set by the test function (a machine cannot take fixtures)."""
_EXAMPLES = itertools.count()
_TOTALS: collections.Counter[str] = collections.Counter()
"""What the examples did, summed (printed at the end: hypothesis's statistics do not
cover a machine run by ``run_state_machine_as_test``)."""


@st.composite
def _planned(draw: st.DrawFn) -> Planned:
    bounds = {"max_depth": 3, "max_width": 6, "max_tasks": 10, "max_items": 24}
    children = {"max_depth": 3, "max_width": 4, "max_tasks": 6, "max_items": 12}
    return Planned(
        draw(st.one_of(cases(**bounds), signal_cases(**bounds), child_cases(**children)))
    )


SMALL_CASES = _planned()
PROCS = st.integers(0, 1)
PICK = st.integers(0, 255)
# Steps that can crash do now and then, at one of the crash points on their path.
START_CRASH = st.sampled_from([None, None, None, "worker.after_start_before_run"])
JOB_CRASH = st.sampled_from(
    [
        None,
        None,
        None,
        "worker.after_run_before_record",
        "worker.after_record_before_project",
        "worker.after_record_before_project",
        "projector.before_apply",
    ]
)
RECOVERY_CRASH = st.none() | st.sampled_from(
    ["projector.before_apply", "recovery.after_project_before_ack"]
)
MAX_WORKFLOWS = 3


class RedisWorkflowMachine(RuleBasedStateMachine):
    """Workflows on a real Redis under random deliveries, duplicates, claims and crashes."""

    def __init__(self) -> None:
        super().__init__()
        (url,) = _URL
        client: Any = connect(url)
        client.flushall()
        client.close()
        self.cluster = Cluster(url, prefix=f"m{next(_EXAMPLES)}")
        self.watched: list[Watched] = []
        self.submitted = 0
        """Workflows the rules submitted (the rest of ``watched``: child workflows)."""

    def _submit(self, case: Case) -> None:
        self._watch_children()
        self.submitted += 1
        wf = self.cluster.submit(case)
        tracked = self.cluster.workflows[-1]
        assert tracked.workflow_id == wf
        self.watched.append(Watched(tracked, case.definition))
        self.cluster.stats["tasks submitted"] += case.definition.task_count

    def _watch_children(self) -> None:
        """Child workflows the cluster started tracking (seen in a queue) are watched."""
        for tracked in self.cluster.workflows[len(self.watched) :]:
            self.watched.append(Watched(tracked, tracked.case.definition))

    @initialize(case=SMALL_CASES)
    def submit_first(self, case: Planned) -> None:
        self._submit(case.case)

    # Every rule is always applicable (a no-op when there is nothing to act on), as in
    # test_core: with swarm testing, a run whose enabled rules all had false
    # preconditions would stop early.

    @precondition(lambda self: self.submitted < MAX_WORKFLOWS)
    @rule(case=SMALL_CASES)
    def submit(self, case: Planned) -> None:
        self.cluster.stats["rule submit"] += 1
        self._submit(case.case)

    @rule(proc=PROCS, count=st.integers(1, 3), pick=PICK, crash=START_CRASH)
    def deliver(self, proc: int, count: int, pick: int, crash: str | None) -> None:
        """A worker reads new messages; its dispatch runs the start script."""
        self.cluster.stats["rule deliver"] += 1
        self.cluster.deliver(proc, count, pick, crash)

    @rule(proc=PROCS, pick=PICK, crash=JOB_CRASH)
    def run_job(self, proc: int, pick: int, crash: str | None) -> None:
        """A worker's pool thread: body, outcome script, inline projection, ack. With no
        job in flight anywhere, ``proc`` first reads a message (so the step does work)."""
        self.cluster.stats["rule run_job"] += 1
        if not any(p.pool.items for p in self.cluster.procs):
            self.cluster.deliver(proc, 1, pick, None)
        self.cluster.run_job(pick, crash)

    @rule(proc=PROCS, pick=PICK, crash=START_CRASH)
    def redeliver(self, proc: int, pick: int, crash: str | None) -> None:
        """One pending message delivered again (XCLAIM, idle 0)."""
        self.cluster.stats["rule redeliver"] += 1
        self.cluster.redeliver(proc, pick, crash)

    @rule(proc=PROCS, crash=START_CRASH)
    def claim_after_lease(self, proc: int, crash: str | None) -> None:
        """The worker's own claim of messages past their lease (XAUTOCLAIM)."""
        self.cluster.stats["rule claim_after_lease"] += 1
        self.cluster.claim(proc, crash)

    @rule(proc=PROCS, pick=PICK, crash=RECOVERY_CRASH, claim=st.booleans())
    def recover(self, proc: int, pick: int, crash: str | None, claim: bool) -> None:
        """A wake-up falls due and a recovery projector handles it (or claims one that
        another projector did not acknowledge)."""
        self.cluster.stats["rule recover"] += 1
        if not claim:
            self.cluster.wake(pick)
        self.cluster.recover(proc, crash, claim=claim)

    @rule(proc=PROCS, pick=PICK)
    def project_again(self, proc: int, pick: int) -> None:
        """A projection of an old cause, by a projector whose cache may lag."""
        self.cluster.stats["rule project_again"] += 1
        self.cluster.project_again(proc, pick)

    @rule(proc=PROCS, pick=PICK, name=st.sampled_from(SIGNALS))
    def signal(self, proc: int, pick: int, name: str) -> None:
        """Someone sends a signal to a workflow (one waiting for it, or not; again)."""
        self.cluster.stats["rule signal"] += 1
        watched = self.watched[pick % len(self.watched)]
        self._signal(proc, watched, name)

    def _signal(self, proc: int, watched: Watched, name: str) -> None:
        app, wf = self.cluster.procs[proc].app, watched.tracked.workflow_id
        try:
            recorded = app.signal(wf, name, payload_of(name))
        except SignalError as refused:
            assert name not in watched.definition.signals or "has ended" in str(refused)
            return
        sent = [e for e in watched.tracked.entries if isinstance(e.event, SignalReceived)]
        assert recorded or any(e.event.name == name for e in sent) or name in watched.sent
        if recorded:
            assert name not in watched.sent, f"{wf}: signal {name!r} recorded twice"
            watched.sent.add(name)
            self.cluster.stats["signals recorded"] += 1

    @rule(proc=PROCS, pick=PICK)
    def resume(self, proc: int, pick: int) -> None:
        """Someone resumes a workflow (a failed one; any other is refused)."""
        self.cluster.stats["rule resume"] += 1
        self._resume(proc, self.watched[pick % len(self.watched)])

    def _resume(self, proc: int, watched: Watched) -> bool:
        entries, _ = self.cluster.read(watched.tracked)
        status = fold_all(entries).status
        try:
            self.cluster.procs[proc].app.resume_workflow(watched.tracked.workflow_id)
        except ResumeError:
            assert status != FAILED, f"{watched.tracked.workflow_id}: failed, not resumed"
            return False
        assert status == FAILED, f"{watched.tracked.workflow_id}: resumed while {status}"
        watched.resumes += 1
        watched.tracked.archived = False  # reopened: its archive is gone, by design
        self.cluster.stats["workflows resumed"] += 1
        return True

    @rule(proc=PROCS, kind=st.sampled_from(["timer", "renew", "sweep"]))
    def housekeeping(self, proc: int, kind: str) -> None:
        """Delayed tasks and retries fall due; leases renewed; the stuck sweep."""
        self.cluster.stats["rule housekeeping"] += 1
        if kind == "timer":
            self.cluster.fast_forward()
        elif kind == "renew":
            self.cluster.renew(proc)
        else:
            self.cluster.sweep(proc)

    @rule(
        proc=PROCS,
        pick=PICK,
        kind=st.sampled_from(["kill", "duplicate", "lose_message", "delete_index"]),
    )
    def fault(self, proc: int, pick: int, kind: str) -> None:
        """A worker process dies; a message is duplicated or lost; the index is lost."""
        self.cluster.stats["rule fault"] += 1
        if kind == "kill":
            self.cluster.kill(proc)
        elif kind == "duplicate":
            self.cluster.duplicate(pick)
        elif kind == "lose_message":
            self.cluster.lose_message(pick, owners=True)
        else:
            self.cluster.delete_index(pick)

    @invariant()
    def logs_keep_the_contract(self) -> None:
        self.cluster.stats["steps"] += 1
        self._watch_children()
        for watched in self.watched:
            watched.check(self.cluster)

    @invariant()
    def projector_caches_are_folds_of_the_log(self) -> None:
        # A cache may lag behind the log, never differ from it.
        logs = {w.tracked.workflow_id: w.tracked.entries for w in self.watched}
        for proc in self.cluster.procs:
            for wf, entries in logs.items():
                projector = proc.app.projector
                if wf in projector.folds:
                    state = projector.folds.get(wf).state
                    folded = fold_all(entries[: state.n])
                    assert state == folded, f"{proc.name}: cache of {wf}: " + str(
                        {
                            f: (getattr(state, f), getattr(folded, f))
                            for f in state.__slots__
                            if getattr(state, f) != getattr(folded, f)
                        }
                    )

    def teardown(self) -> None:
        try:
            # Only on a passing run: a failure must surface as it is, not as a drain error.
            if self.watched and sys.exc_info()[0] is None:
                for watched in self.watched:  # those never sent (the rest: duplicates)
                    for name in watched.definition.signals:
                        self._signal(0, watched, name)
                self.cluster.drain()
                for _ in range(10):  # each resume gets every failing node past its plan
                    if not [w for w in self.watched if w.resumes and self._resume(0, w)]:
                        break
                    self.cluster.drain()
                self._watch_children()
                statuses = collections.Counter(w.check_finished(self.cluster) for w in self.watched)
                assert self.cluster.idle()
                assert not self.cluster.client.scard(self.cluster.keys.active(SHARD))
                _TOTALS["examples drained"] += 1
                _TOTALS.update(f"workflows {status}" for status in statuses.elements())
                _TOTALS.update(self.cluster.stats)
                for status, count in statuses.items():
                    hypothesis.event(f"{status}: {count}")
                for name, count in sorted(self.cluster.stats.items()):
                    hypothesis.event(f"{name}: {_bucket(count)}")
        finally:
            self.cluster.close()


def _bucket(n: int) -> str:
    for bound in (0, 1, 5, 20):
        if n <= bound:
            return f"<={bound}"
    return ">20"


MAX_EXAMPLES = 1000
"""At most this many examples whatever the profile (~0.3 s each: thorough's 2,000 would
run for ten minutes); ci's 50 take ~15 s."""


def _settings() -> settings:
    return settings(
        max_examples=min(settings.default.max_examples, MAX_EXAMPLES),
        stateful_step_count=50,
        # The explain phase traces every line while replaying a failure: slow, and it
        # says little about a state machine.
        phases=[p for p in Phase if p is not Phase.explain],
    )


@pytest.mark.timeout(1800)  # the thorough profile; ci takes well under a minute
def test_redis_machine(redis_url: str) -> None:
    _URL[:] = [redis_url]
    _TOTALS.clear()
    started = time.monotonic()
    try:
        with crash_points():
            run_state_machine_as_test(RedisWorkflowMachine, settings=_settings())
    finally:
        _URL.clear()
    summary = ", ".join(f"{name}: {count}" for name, count in sorted(_TOTALS.items()))
    print(f"machine: {time.monotonic() - started:.1f}s; {summary}", file=sys.stderr)


# -- found by the machine --------------------------------------------------------------


def test_sweep_resends_a_lost_started_message(redis_url: str) -> None:
    # DESIGN §8 (sweep): "started, no outcome, its message gone from every pending list".
    # Found by the machine: the re-sent copy was dropped as DUP (m:<node> still named the
    # lost message) and the workflow never finished. Now the copy takes the attempt over.
    client: Any = connect(redis_url)
    client.flushall()
    client.close()
    canvas = F.message(1)
    case = Case(canvas=canvas, compiled=compile_canvas(canvas), fail_until={})
    cluster = Cluster(redis_url, prefix="lost")
    try:
        with crash_points():
            workflow_id = cluster.submit(case)
            cluster.deliver(0, 1, 0, None)  # start.lua: RUN, TaskStarted, m:0 = this message
            cluster.kill(0)  # the worker dies mid-task: the message stays pending ...
            cluster.lose_message(0, owners=True)  # ... until it is lost (XACK + XDEL)
            # The sweep re-sends it; the copy takes the attempt over and runs.
            cluster.drain(max_rounds=5)
        assert cluster.handle(workflow_id).get_result() == ["f", 1]
    finally:
        cluster.close()
