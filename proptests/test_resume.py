"""Resume, property-based, on the simulated shell: random canvases whose tasks fail for
good now and then, run under random deliveries, duplicated and lost messages, crashes
and stale projectors, and resumed at random moments once they failed (and again if they
fail again). A resumed workflow ends with the reference result, no node that succeeded
ever runs again, and every log audits clean and replays."""

from __future__ import annotations

import collections
from typing import Any

import hypothesis
from hypothesis import Phase, settings
from hypothesis.stateful import rule

from proptests.test_core import SerialisedMachine, WorkflowMachine, _decidable, check_finished
from streamflow.model.events import TaskStarted, TaskSucceeded, WorkflowResumed
from streamflow.model.schema import COMPLETED, FAILED

MAX_RESUMES = 20


class ResumeMachine(SerialisedMachine):
    """``WorkflowMachine`` with resumes of the workflow once it has failed."""

    @rule(target=WorkflowMachine.causes)
    def resume(self) -> Any:
        if self.sim.idx.status != FAILED:
            return _decidable([])
        before = len(self.sim.log)
        self.sim.resume(reason="proptest")
        return _decidable(self.sim.log[before:])

    def teardown(self) -> None:
        if not hasattr(self, "sim"):
            return
        self.sim.drain()
        for _ in range(MAX_RESUMES):  # each resume gets every failing node past its plan
            if self.sim.idx.status != FAILED:
                break
            self.sim.resume(reason="teardown")
            self.sim.drain()
        assert self.sim.idx.status == COMPLETED, self.sim.idx.status
        self.checker.feed(self.sim.log)
        check_finished(self.sim, self.expected)
        runs: collections.Counter[int] = collections.Counter()
        succeeded: set[int] = set()
        for entry in self.sim.log:
            event = entry.event
            if isinstance(event, TaskStarted):
                assert event.node not in succeeded, f"node {event.node} ran after its success"
                runs[event.node] += 1
            elif isinstance(event, TaskSucceeded):
                succeeded.add(event.node)
        resumes = sum(isinstance(e.event, WorkflowResumed) for e in self.sim.log)
        hypothesis.event(f"resumes: {min(resumes, 3)}{'+' if resumes > 3 else ''}")


TestResumeMachine = ResumeMachine.TestCase
TestResumeMachine.settings = settings(
    stateful_step_count=60, phases=[p for p in Phase if p is not Phase.explain]
)
