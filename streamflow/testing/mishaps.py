"""The faults a simulated workflow meets between its scripts: a worker that dies before
projecting an outcome or mid-task, a message delivered twice, and a projector whose
fold lags behind the log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streamflow.model.decide import decide
from streamflow.model.definition import Definition
from streamflow.model.events import Entry, Event
from streamflow.model.state import fold_all
from streamflow.testing.records import Job, QueueMessage


class Mishaps:
    """``Simulator``'s faults, one move each (a mixin: it has the log, the queue and the jobs)."""

    definition: Definition
    log: list[Entry]
    queue: list[QueueMessage]
    jobs: list[Job]
    stats: Any

    if TYPE_CHECKING:  # the Simulator's own, which this mixin calls

        def finish(self, job: Job, *, project: bool = True) -> list[Entry]: ...

        def _new_message(self, node: int, attempt: int) -> None: ...

        def apply(
            self, decisions: Sequence[Event], *, expected: int, check_conflict: bool = True
        ) -> tuple[str, list[Entry]]: ...

    def crash(self, job: Job) -> list[Entry]:
        """The worker records the outcome, then dies before projecting it; the outcome's
        wake-up is left for ``recover``."""
        return self.finish(job, project=False)

    def drop(self, job: Job) -> None:
        """The worker dies mid-task: no outcome; the message waits for redelivery."""
        self.stats["drops"] += 1
        self.jobs.remove(job)

    def duplicate(self, pick: int = 0) -> None:
        """The queue holds message ``pick`` twice (at-least-once delivery): a new id."""
        self.stats["duplicates"] += 1
        message = self.queue[pick % len(self.queue)]
        self._new_message(message.node, message.attempt)

    def project_stale(self, cause: Entry, lag: int, *, check_conflict: bool = True) -> list[Entry]:
        """A projector whose fold stops ``lag`` entries short of the log (but includes
        ``cause``); ``check_conflict=False`` takes the apply script's serialisation away,
        leaving idempotency keys and the terminal check: the core alone must be right."""
        self.stats["stale_projections"] += 1
        upto = max(cause.seq, len(self.log) - lag)
        state = fold_all(self.log[:upto])
        decisions = decide(self.definition, state, cause)
        reply, entries = self.apply(
            decisions, expected=state.last_decision, check_conflict=check_conflict
        )
        if reply == "CONFLICT":
            self.stats["conflicts"] += 1
        return entries
