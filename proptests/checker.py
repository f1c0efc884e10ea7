"""The contract, checked entry by entry: ``Checker`` follows a workflow's log as it
grows and verifies each new entry against contract items 1 and 2 (DESIGN §1), the rules
of the scripts (dense sequence numbers, one outcome per attempt, retries and resumes
that the log allows) and the results of the reference model (``proptests.simulator``'s
``evaluate``), for the simulator's logs and the real shell's alike.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from proptests.simulator import Case
from streamflow.model.definition import NONE
from streamflow.model.events import (
    TERMINAL,
    BarrierDecremented,
    BarrierReleased,
    Entry,
    SignalReceived,
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowResumed,
    WorkflowSubmitted,
)
from streamflow.model.fork import kept_of
from streamflow.testing import Evaluation as Expected
from streamflow.testing import task_ids

# -- the contract, checked entry by entry ----------------------------------------------


class Checker:
    """Checks each new log entry against the contract and the reference model."""

    def __init__(self, case: Case, expected: Expected) -> None:
        self.definition = case.definition
        self.expected_value = dict(zip(task_ids(self.definition), expected.values, strict=True))
        self.entries: list[Entry] = []
        self.succeeded: dict[int, int] = {}
        """Task -> seq of its TaskSucceeded."""
        self.final_failures: list[int] = []
        self.outcomes: set[tuple[int, int]] = set()
        self.retry_delay: dict[tuple[int, int], int] = {}
        """(node, attempt) -> retry delay of its failure."""
        self.enqueued: dict[int, int] = {}
        """Task -> latest enqueued attempt."""
        self.started: set[tuple[int, int]] = set()
        self.decremented: dict[int, set[int]] = collections.defaultdict(set)
        self.released: set[int] = set()
        self.signals: set[str] = set()
        """Signals received so far."""
        self.resumed: set[tuple[int, int]] = set()
        """(node, attempt) a resume re-runs."""
        self.base: dict[int, int] = {}
        """Task -> attempts it had before the last resume."""
        self.kept: set[int] = set()
        """Tasks whose results a fork keeps (decided, never run)."""
        self.ended = False

    def feed(self, entries: Sequence[Entry]) -> None:
        for entry in entries[len(self.entries) :]:
            self._check(entry)
            self.entries.append(entry)

    def _check(self, entry: Entry) -> None:
        d = self.definition
        seq, event = entry.seq, entry.event
        where = f"seq {seq} {event!r}"
        assert seq == len(self.entries) + 1, f"sequence numbers not dense at {where}"
        if self.entries:
            assert _id_key(entry.stream_id) > _id_key(self.entries[-1].stream_id), where
        assert not self.ended or isinstance(event, WorkflowResumed), f"{where} after the end"
        assert event.cause < seq, f"{where}: its cause is not earlier"
        assert isinstance(event, WorkflowSubmitted) == (seq == 1), where
        if isinstance(event, WorkflowSubmitted):
            self.kept = set(kept_of(event.options))
        if isinstance(event, TaskEnqueued):
            node, attempt = event.node, event.attempt
            assert self.enqueued.get(node, 0) < attempt, f"second or backward enqueue: {where}"
            task = d.task(node)
            if attempt == 1:
                assert task.pred == NONE or task.pred in self.released, f"not ready: {where}"
                assert event.delay_ms == task.delay_ms, where
            elif (node, attempt) in self.resumed:
                assert self.enqueued.get(node) == attempt - 1, where
            else:
                assert self.enqueued.get(node) == attempt - 1, where
                retry = self.retry_delay.get((node, attempt - 1))
                assert retry is not None, f"retry without a retryable failure: {where}"
                assert attempt - 1 - self.base.get(node, 0) <= task.options.max_retries, where
                assert event.delay_ms == retry, f"{where}: the failure asked for {retry}"
            self.enqueued[node] = attempt
        elif isinstance(event, TaskStarted):
            node, attempt = event.node, event.attempt
            assert self.enqueued.get(node) == attempt, f"start of a stale attempt: {where}"
            assert (node, attempt) not in self.outcomes, f"start after the outcome: {where}"
            task = d.task(node)
            if task.pred != NONE:
                for source in d.barrier(task.pred).sources:
                    assert source in self.succeeded, (
                        f"contract 1: node {node} started at seq {seq} before its "
                        f"predecessor {source} succeeded"
                    )
            for leaf in d.pipe_leaves(node):
                assert leaf in self.succeeded, f"piped result of {leaf} missing: {where}"
            self.started.add((node, attempt))
        elif isinstance(event, WorkflowResumed):
            assert self.ended and self.final_failures, f"resumed, not failed: {where}"
            for node, attempt in event.nodes.items():
                assert node not in self.succeeded, f"a success resumed: {where}"
                assert attempt == self.enqueued.get(node, 0) + 1, where
                self.resumed.add((node, attempt))
                self.base[node] = attempt - 1
                if node in self.final_failures:
                    self.final_failures.remove(node)
            self.ended = False
        elif isinstance(event, SignalReceived):
            assert event.name not in self.signals, f"a signal received twice: {where}"
            self.signals.add(event.name)
        elif isinstance(event, (TaskSucceeded, TaskFailed)):
            node, attempt = event.node, event.attempt
            name = d.task(node).signal
            if node in self.kept:  # decided, never run: the result the fork keeps
                assert isinstance(event, TaskSucceeded) and attempt == 1, where
                assert (node, attempt) not in self.started, f"a kept task ran: {where}"
                self.started.add((node, attempt))
            elif name is None:
                assert (node, attempt) in self.started, f"outcome without a start: {where}"
            else:  # decided, never run: its signal's payload, once the signal came
                assert isinstance(event, TaskSucceeded), f"no timeout here: {where}"
                assert name in self.signals, f"taken before its signal came: {where}"
                self.started.add((node, attempt))
            assert (node, attempt) not in self.outcomes, f"second outcome: {where}"
            assert self.enqueued.get(node) == attempt, f"outcome of a stale attempt: {where}"
            self.outcomes.add((node, attempt))
            if isinstance(event, TaskSucceeded):
                assert event.result == self.expected_value[node], (
                    f"node {node}: result {event.result!r} != {self.expected_value[node]!r}"
                )
                self.succeeded[node] = seq
            elif event.retry_delay_ms is None:
                self.final_failures.append(node)
            else:
                self.retry_delay[(node, attempt)] = event.retry_delay_ms
        elif isinstance(event, BarrierDecremented):
            barrier = d.barrier(event.barrier)
            assert event.source in barrier.sources, where
            assert event.source in self.succeeded, f"decrement before the success: {where}"
            assert event.source not in self.decremented[event.barrier], f"twice: {where}"
            self.decremented[event.barrier].add(event.source)
        elif isinstance(event, BarrierReleased):
            barrier = d.barrier(event.barrier)
            assert event.barrier not in self.released, f"contract 2: released twice: {where}"
            assert self.decremented[event.barrier] == set(barrier.sources), (
                f"released before every source was decremented: {where}"
            )
            self.released.add(event.barrier)
        elif isinstance(event, WorkflowCompleted):
            assert len(self.succeeded) == d.task_count, f"completed too early: {where}"
            self.ended = True
        elif isinstance(event, WorkflowFailed):
            assert self.final_failures, f"failed without a final task failure: {where}"
            assert event.error["node"] in self.final_failures, where
            self.ended = True
        elif isinstance(event, TERMINAL):
            raise AssertionError(f"nobody cancels here: {where}")


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, n = stream_id.split("-")
    return int(ms), int(n)
