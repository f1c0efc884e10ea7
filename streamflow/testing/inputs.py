"""What reaches a simulated workflow from outside its workers: signals (``App.signal``)
and resumes (``App.resume_workflow``), played as their scripts do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streamflow.model import schema
from streamflow.model.decide import decide, decide_all
from streamflow.model.definition import Definition
from streamflow.model.errors import ResumeError
from streamflow.model.events import Entry, Event, SignalReceived, WorkflowResumed
from streamflow.model.resume import not_resumable, resume_nodes
from streamflow.model.schema import RUNNING
from streamflow.model.state import State, fold


class Inputs:
    """``Simulator``'s ``signal`` and ``resume`` (a mixin: it has the log and scripts)."""

    definition: Definition
    idx: State
    log: list[Entry]
    _ms: int
    stats: Any

    if TYPE_CHECKING:  # the Simulator's own, which this mixin calls

        def _script(self, events: Sequence[Event | bytes]) -> list[Entry]: ...

        def apply(
            self, decisions: Sequence[Event], *, expected: int, check_conflict: bool = True
        ) -> tuple[str, list[Entry]]: ...

    def signal(self, name: str, payload: Any = None, sender: str = "") -> bool:
        """``App.signal``: SignalReceived and what it decides, in one apply; False for a
        duplicate (or a workflow ended without it)."""
        if schema.signal_key(name) in self.idx.keys or self.idx.status != RUNNING:
            return False
        state = self.idx.copy()
        received = SignalReceived(name=name, payload=payload, sender=sender)
        entry = Entry(seq=state.n + 1, stream_id=f"{self._ms}-0", event=received)
        decisions = [received, *decide(self.definition, fold(state, entry), entry)]
        reply, _ = self.apply(decisions, expected=self.idx.last_decision)
        assert reply == "OK", reply  # one thread: nothing comes in between
        self.stats["signals"] += 1
        return True

    def resume(self, reason: str = "", by: str = "") -> list[int]:
        """``App.resume_workflow``: the resume script reopens the failed workflow with
        WorkflowResumed, then applies what it decides; the nodes that run again.

        Raises:
            ResumeError: the workflow is not failed.
        """
        refused = not_resumable(self.idx)
        if refused:
            raise ResumeError(refused)
        nodes = resume_nodes(self.definition, self.idx)
        resumed = WorkflowResumed(epoch=self.idx.epoch + 1, nodes=nodes, reason=reason, by=by)
        self._script([resumed])
        # All the log implies: a projection the failure cut short is made now.
        decisions = decide_all(self.definition, self.idx, self.log)
        reply, _ = self.apply(decisions, expected=self.idx.last_decision)
        assert reply == "OK", reply
        self.stats["resumes"] += 1
        return sorted(nodes)
