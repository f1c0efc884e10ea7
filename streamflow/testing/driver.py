"""Driving a ``Simulator`` to the end under faults chosen by a seed or by hypothesis.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any, Protocol

from streamflow.api.actors import Actor
from streamflow.api.canvas import Canvas
from streamflow.api.compile import Compiled
from streamflow.testing.actors import Actors
from streamflow.testing.records import SimResult
from streamflow.testing.simulator import DECIDABLE, Simulator


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """How often ``run`` injects each fault, as a probability per step where it applies."""

    duplicate: float = 0.1
    """The queue holds a message twice (at-least-once delivery)."""
    drop: float = 0.1
    """A worker dies mid-task (no outcome; the message is redelivered later), or a
    message is redelivered while its worker still runs it (its lease expired)."""
    crash: float = 0.1
    """A worker dies between recording an outcome and projecting it."""
    stale: float = 0.05
    """A projector with a stale fold re-decides an earlier cause."""
    max_faults: int = 100
    """After this many faults the run goes on without any."""


NO_FAULTS = Faults(duplicate=0, drop=0, crash=0, stale=0, max_faults=0)


class _Chooser(Protocol):
    def index(self, n: int, label: str) -> int: ...
    def chance(self, p: float, label: str) -> bool: ...


class _RandomChooser:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def index(self, n: int, label: str) -> int:
        return self.rng.randrange(n)

    def chance(self, p: float, label: str) -> bool:
        return p > 0 and self.rng.random() < p


class _DataChooser:
    """Draws from hypothesis's ``data``: shrinks towards the first choice and no fault."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self.data, self.st = data, st

    def index(self, n: int, label: str) -> int:
        return int(self.data.draw(self.st.integers(0, n - 1), label=label))

    def chance(self, p: float, label: str) -> bool:
        return p > 0 and int(self.data.draw(self.st.integers(0, 99), label=label)) >= 100 - p * 100


class _FirstChooser:
    def index(self, n: int, label: str) -> int:
        return 0

    def chance(self, p: float, label: str) -> bool:
        return False


_FAULTS = ("duplicates", "drops", "crashes", "stale_projections")


def step(sim: Simulator, choose: _Chooser, faults: Faults) -> bool:
    """One step chosen by ``choose``: a delivery, an outcome, a recovery, or a fault.

    Returns False once nothing is pending.
    """
    if sum(sim.stats[k] for k in _FAULTS) >= faults.max_faults:
        faults = NO_FAULTS
    held = {job.message.msg_id for job in sim.jobs}
    # A message a live worker holds is redelivered only once its lease expires.
    free = [i for i, m in enumerate(sim.queue) if m.msg_id not in held]
    moves = []
    if sim.jobs:
        moves.append("finish")
    if sim.wakeups:
        moves.append("recover")
    if free:
        moves.append("deliver")
    if not moves:
        return False
    move = moves[choose.index(len(moves), "move")]
    if move == "deliver":
        if choose.chance(faults.duplicate, "duplicate"):
            sim.duplicate(free[choose.index(len(free), "message")])
        if choose.chance(faults.drop, "lease expired"):
            sim.deliver(choose.index(len(sim.queue), "message"))
        else:
            sim.deliver(free[choose.index(len(free), "message")])
    elif move == "finish":
        job = sim.jobs[choose.index(len(sim.jobs), "job")]
        if choose.chance(faults.drop, "drop"):
            sim.drop(job)
        else:
            entries = sim.finish(job, project=not choose.chance(faults.crash, "crash"))
            if entries and choose.chance(faults.stale, "stale projection"):
                causes = [e for e in sim.log if isinstance(e.event, DECIDABLE)]
                cause = causes[choose.index(len(causes), "cause")]
                sim.project_stale(cause, choose.index(8, "lag"))
    else:
        sim.recover()
    return True


def run(
    canvas: Canvas | Compiled,
    *,
    actors: Actors = (),
    seed: int | None = None,
    data: Any = None,
    faults: Faults | None = None,
    fail_until: Mapping[int, int] | None = None,
    on_failure: Actor[..., Any] | None = None,
    max_steps: int = 100_000,
) -> SimResult:
    """Submit ``canvas`` to a ``Simulator`` and drive it to its end.

    Without ``seed`` or ``data`` messages run in order, without faults. With ``seed`` (a
    ``random.Random`` seed) or ``data`` (hypothesis's ``st.data()`` object: failures
    shrink), every step picks which message is delivered, which outcome recorded, and
    whether a fault strikes, as ``faults`` says (default ``Faults()``).

    Args:
        canvas: what to run.
        actors: the actor functions (see ``Simulator``).
        seed: random seed of the interleaving and faults.
        data: hypothesis's ``data`` object to draw them from instead.
        faults: how often each fault strikes.
        fail_until: outcome plan: task node id -> its attempts 1..k fail.
        on_failure: the workflow's on_failure actor.
        max_steps: give up after this many steps.

    Returns:
        The status, result, error, history and definition of the run.

    Raises:
        AssertionError: not finished after ``max_steps`` steps.
    """
    choose: _Chooser
    if data is not None:
        choose = _DataChooser(data)
    elif seed is not None:
        choose = _RandomChooser(seed)
    else:
        choose, faults = _FirstChooser(), NO_FAULTS
    sim = Simulator(canvas, actors=actors, fail_until=fail_until, on_failure=on_failure)
    sim.submit()
    for _ in range(max_steps):
        if not step(sim, choose, faults or Faults()):
            break
    else:
        raise AssertionError(f"not finished after {max_steps} steps")
    return sim.result()
