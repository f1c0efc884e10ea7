"""Child workflows in the simulator: a ``Child`` node's run starts its child (a simulator
of its own, nested), parks, and takes the child's outcome once told, as
``streamflow.api.children`` does on Redis.

A parked run is a job without an outcome: ``finish`` acknowledges its message and looks
at the child again (``Parked.then``), ``crash`` acknowledges it and dies before looking,
``drop`` dies before acknowledging (the message is delivered again, and the run finds
the child it started). When a child has ended, ``tell`` sends its parent node's message
again (or loses it: the process that ended the child died first), and ``sweep`` re-sends
the message of a started attempt that no message stands for (the parent's sweep).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from streamflow.api.compile import Compiled
from streamflow.model import codec, schema
from streamflow.model.children import child_workflow_id
from streamflow.model.definition import Definition, TaskNode
from streamflow.model.events import ChildStarted, Entry, Event, TaskSucceeded
from streamflow.model.schema import COMPLETED, RUNNING
from streamflow.model.state import State
from streamflow.testing.bodies import Bodies
from streamflow.testing.records import Job, QueueMessage, SimResult

ChildPlan = Callable[[TaskNode, int, Definition], Mapping[int, int]]
"""A child's outcome plan (its ``fail_until``) from its parent's ``Child`` node, the
node's attempt and the child's definition."""


class ChildFailedInSim(Exception):
    """What a ``Child`` node's run raises for a child that ended without a result (the
    simulator's ``ChildFailed``: the same type name in the log)."""


ChildFailedInSim.__name__ = ChildFailedInSim.__qualname__ = "ChildFailed"


class Children:
    """``Simulator``'s child workflows (a mixin: it has the log, queue and scripts)."""

    definition: Definition
    idx: State
    queue: list[QueueMessage]
    jobs: list[Job]
    stats: Any
    actors: dict[str, Any]
    bodies: Bodies
    workflow_id: str
    options: dict[str, Any]
    children: dict[tuple[int, int], Children]
    """(node, attempt) -> the child that attempt started."""
    told: set[tuple[int, int]]
    """Children whose end was told (or lost)."""
    child_plan: ChildPlan | None

    if TYPE_CHECKING:

        def _script(self, events: Sequence[Event | bytes]) -> list[Entry]: ...

        def _new_message(self, node: int, attempt: int) -> None: ...

        def _ack(self, message: QueueMessage) -> None: ...

        def _new_child(self, compiled: Compiled, fail_until: Mapping[int, int]) -> Children: ...

        def submit(self) -> list[Entry]: ...

        def result(self) -> SimResult: ...

    def _run_child(self, message: QueueMessage, node: int, attempt: int, start_seq: int) -> Job:
        """A ``Child`` node's run (``run_child``): start the child once, then park; with
        the child ended, its outcome."""
        child = self.children.get((node, attempt))
        if child is None:
            child = self._start_child(node, attempt)
        if child.idx.status == RUNNING:
            self.stats["parked"] += 1
            return Job(message, None)
        if child.idx.status == COMPLETED:
            value = codec.decode(codec.encode(child.result().result))
            return Job(
                message, TaskSucceeded(node=node, attempt=attempt, result=value, cause=start_seq)
            )
        failed = ChildFailedInSim(f"child workflow {child.workflow_id} {child.idx.status}")
        return Job(message, self.bodies.failure(node, attempt, start_seq, failed, self.idx))

    def _start_child(self, node: int, attempt: int) -> Children:
        """Record ChildStarted (note.lua), then submit the child."""
        child_id = child_workflow_id(self.workflow_id, node, attempt)
        started = ChildStarted(node=node, attempt=attempt, child=child_id)
        if schema.child_key(child_id) not in self.idx.keys:
            self._script([started])
        blob, args = codec.decode(self.idx.args[node])[0][:2]
        definition = Definition.from_bytes(blob)
        task = self.definition.task(node)
        plan = self.child_plan(task, attempt, definition) if self.child_plan else {}
        child = self._new_child(Compiled(definition, dict(args)), plan)
        child.workflow_id = child_id
        child.options = {
            "parent": {"workflow_id": self.workflow_id, "node": node, "attempt": attempt}
        }
        child.child_plan = self.child_plan
        child.submit()
        self.children[(node, attempt)] = child
        self.stats["children"] += 1
        return child

    def _look_again(self, message: QueueMessage) -> None:
        """``Parked.then``: a child that ended meanwhile told a parent whose message was
        still pending (dropped as a duplicate): tell it again."""
        child = self.children.get((message.node, message.attempt))
        if child is not None and child.idx.status != RUNNING:
            self._new_message(message.node, message.attempt)

    def family(self) -> Iterator[Children]:
        """This workflow and every child under it, depth first."""
        yield self
        for child in self.children.values():
            yield from child.family()

    def ended_untold(self) -> list[tuple[Children, int, int]]:
        """(parent, node, attempt) of every child in the family that has ended and
        whose end was not told yet."""
        return [
            (sim, node, attempt)
            for sim in self.family()
            for (node, attempt), child in sim.children.items()
            if child.idx.status != RUNNING and (node, attempt) not in sim.told
        ]

    def tell(self, node: int, attempt: int, *, lost: bool = False) -> None:
        """The process that ended a child sends the parent node's message again
        (``tell_parent``); ``lost``: it died first."""
        self.told.add((node, attempt))
        if lost:
            self.stats["tells_lost"] += 1
        else:
            self._new_message(node, attempt)

    def sweep(self) -> None:
        """The parent's sweep: each started attempt of a ``Child`` node without an
        outcome, that no message (pending or not) stands for, gets one again."""
        for (node, attempt), child in self.children.items():
            if (
                self.idx.attempt.get(node) == attempt
                and schema.outcome_key(node, attempt) not in self.idx.keys
                and self.idx.status == RUNNING
                and child.idx.status != RUNNING
                and not any((m.node, m.attempt) == (node, attempt) for m in self.queue)
                and not any(
                    (j.message.node, j.message.attempt) == (node, attempt) for j in self.jobs
                )
            ):
                self.stats["swept"] += 1
                self._new_message(node, attempt)


def child_nodes(definition: Definition) -> list[int]:
    """The ``Child`` nodes of a definition."""
    return [n.id for n in definition.nodes if isinstance(n, TaskNode) and n.child]
