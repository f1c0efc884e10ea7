"""The test actors and strategies of the property-based tests (no Redis).

The simulator of the shell over the pure core (scripts, workers, projectors: deliveries,
duplicated and redelivered messages, workers that die before or after recording an
outcome, recovery projections, stale projectors), the canvas strategies and ``evaluate``,
the reference model of a canvas's results, are ``streamflow.testing``'s, here bound to the
fixed test actors F, H, FLAKY and FRAGILE. The contract checks are ``proptests.checker``'s.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from hypothesis import strategies as st

from streamflow import testing
from streamflow.api.actors import Actor
from streamflow.api.canvas import Canvas, Chain, Group, Message, WithDelay
from streamflow.api.children import Child
from streamflow.api.compile import Compiled, compile_canvas
from streamflow.api.signals import Signal
from streamflow.model import codec
from streamflow.model.definition import Definition, TaskNode
from streamflow.model.options import ActorOptions
from streamflow.testing import NOTHING, task_ids
from streamflow.testing import Evaluation as Expected
from streamflow.testing.records import Job, QueueMessage
from streamflow.testing.simulator import DECIDABLE
from streamflow.testing.strategies import canvases as user_canvases

__all__ = [
    "ACTORS",
    "DECIDABLE",
    "FLAKY",
    "FRAGILE",
    "NOTHING",
    "Case",
    "Expected",
    "F",
    "H",
    "Job",
    "QueueMessage",
    "Simulator",
    "canvases",
    "cases",
    "child_canvases",
    "child_cases",
    "evaluate",
    "messages",
    "rebuild",
    "task_ids",
]

# -- actors ----------------------------------------------------------------------------


def _kwargs_part(kwargs: dict[str, Any]) -> list[Any]:
    return [[[k, v] for k, v in sorted(kwargs.items())]] if kwargs else []


def _f(*args: Any, **kwargs: Any) -> Any:
    return ["f", *args, *_kwargs_part(kwargs)]


def _h(*args: Any, **kwargs: Any) -> Any:
    # A compact digest of its input: keeps results small when groups pile up.
    digest = hashlib.blake2b(codec.pack([list(args), kwargs]), digest_size=4).hexdigest()
    return ["h", digest]


def _flaky(*args: Any, **kwargs: Any) -> Any:
    return ["flaky", *args, *_kwargs_part(kwargs)]


def _fragile(*args: Any, **kwargs: Any) -> Any:
    return ["fragile", *args, *_kwargs_part(kwargs)]


F = Actor(_f, name="f", options=ActorOptions())
H = Actor(_h, name="h", options=ActorOptions(queue="other", time_limit_ms=5000))
FLAKY = Actor(_flaky, name="flaky", options=ActorOptions(max_retries=2, min_backoff_ms=10))
FRAGILE = Actor(_fragile, name="fragile", options=ActorOptions(max_retries=0))
ACTORS: dict[str, Actor[..., Any]] = {a.name: a for a in (F, H, FLAKY, FRAGILE)}
"""The simulated worker's registry."""

# -- strategies ------------------------------------------------------------------------


_ACTOR = st.sampled_from([F, F, H, FLAKY, FRAGILE])
_ARGS = st.lists(st.integers(0, 3), max_size=2)
_KWARGS = st.dictionaries(st.just("k"), st.integers(0, 3), max_size=1)
_DELAY = st.sampled_from([None, None, 0.001, 2])


@st.composite
def messages(draw: st.DrawFn) -> Message:
    """A message of one of the test actors, with small int arguments."""
    return draw(_ACTOR).message_with_options(
        args=draw(_ARGS),
        kwargs=draw(_KWARGS),
        pipe_ignore=draw(st.booleans()),
        delay=draw(_DELAY),
    )


_MESSAGES = messages()


def canvases(
    max_depth: int = 5, max_width: int = 50, max_tasks: int = 60, max_items: int = 120
) -> st.SearchStrategy[Canvas]:
    """Random canvases of the test actors (``streamflow.testing.canvases``).

    At most ``max_depth`` levels of nesting, ``max_width`` members per chain or group,
    ``max_tasks`` messages and ``max_items`` canvas objects in all.
    """
    return user_canvases(
        messages=_MESSAGES,
        max_depth=max_depth,
        max_width=max_width,
        max_tasks=max_tasks,
        max_items=max_items,
    )


@dataclasses.dataclass(frozen=True)
class Case:
    """A canvas, its compiled form, and which attempts of which nodes fail."""

    canvas: Canvas
    compiled: Compiled
    fail_until: dict[int, int]
    """Task node -> attempts 1..k of it fail (k > max_retries: it fails for good)."""

    @property
    def definition(self) -> Definition:
        return self.compiled.definition

    @property
    def fails_for_good(self) -> bool:
        d = self.definition
        return any(k > d.task(n).options.max_retries for n, k in self.fail_until.items())


@st.composite
def cases(draw: st.DrawFn, **canvas_bounds: int) -> Case:
    canvas = draw(canvases(**canvas_bounds))
    compiled = compile_canvas(canvas)
    final_failures = draw(st.booleans())
    fail_until: dict[int, int] = {}
    for node in compiled.definition.nodes:
        if isinstance(node, TaskNode) and node.actor in ("flaky", "fragile"):
            limit = node.options.max_retries + (1 if final_failures else 0)
            fail_until[node.id] = draw(st.integers(0, limit))
    return Case(canvas=canvas, compiled=compiled, fail_until=fail_until)


def child_canvases(
    max_depth: int = 3, max_width: int = 4, max_tasks: int = 8, max_items: int = 12
) -> st.SearchStrategy[Canvas]:
    """Canvases of the test actors with ``Child`` nodes (0 or 1 retry), whose canvases
    may hold ``Child`` nodes of their own (one level more)."""

    def canvases_of(messages: st.SearchStrategy[Any], tasks: int) -> st.SearchStrategy[Canvas]:
        return user_canvases(
            messages=messages,
            max_depth=max_depth,
            max_width=max_width,
            max_tasks=tasks,
            max_items=max_items,
        )

    def children(inner: st.SearchStrategy[Canvas]) -> st.SearchStrategy[Message]:
        return st.builds(lambda c, r: Child(c, max_retries=r), inner, st.integers(0, 1))

    leaves = children(canvases_of(_MESSAGES, max(1, max_tasks // 2)))
    inner = children(canvases_of(st.one_of(_MESSAGES, leaves), max(1, max_tasks // 2)))
    return canvases_of(st.one_of(_MESSAGES, _MESSAGES, inner), max_tasks)


def _recovering(draw: st.DrawFn, canvas: Canvas) -> Case:
    """A case whose flaky and fragile tasks fail, each within its retries."""
    compiled = compile_canvas(canvas)
    fail_until = {
        node.id: draw(st.integers(0, node.options.max_retries))
        for node in compiled.definition.nodes
        if isinstance(node, TaskNode) and node.actor in ("flaky", "fragile")
    }
    return Case(canvas=canvas, compiled=compiled, fail_until=fail_until)


@st.composite
def child_cases(draw: st.DrawFn, **canvas_bounds: int) -> Case:
    """Cases with ``Child`` nodes; the parent's own flaky and fragile tasks may fail."""
    canvas = draw(child_canvases(**canvas_bounds))
    return _recovering(draw, canvas)


SIGNALS = ("s0", "s1", "s2")
"""The names signal nodes wait for (several nodes may wait for one)."""


def payload_of(name: str) -> Any:
    """What signal ``name`` carries in these tests."""
    return {"signal": name, "n": SIGNALS.index(name)}


SIGNAL_ACTORS: dict[str, Actor[..., Any]] = {
    f"@signal:{name}": Actor(
        lambda name=name: payload_of(name), name=f"@signal:{name}", options=ActorOptions()
    )
    for name in SIGNALS
}
"""For the reference model only: a signal node's value is its signal's payload."""


@st.composite
def signal_cases(
    draw: st.DrawFn,
    max_depth: int = 5,
    max_width: int = 8,
    max_tasks: int = 20,
    max_items: int = 40,
) -> Case:
    """Cases whose canvases mix the test actors' messages with ``Signal`` nodes (no
    timeout: the reference model knows each node's value, the payload)."""
    signals = st.sampled_from(SIGNALS).map(Signal)
    canvas = draw(
        user_canvases(
            messages=st.one_of(_MESSAGES, signals),
            max_depth=max_depth,
            max_width=max_width,
            max_tasks=max_tasks,
            max_items=max_items,
        )
    )
    return _recovering(draw, canvas)


# -- the reference model ---------------------------------------------------------------


def evaluate(canvas: Canvas) -> Expected:
    """Evaluate ``canvas`` directly, the way its semantics say (DESIGN §4)."""
    return testing.evaluate(canvas, actors={**ACTORS, **SIGNAL_ACTORS})


def rebuild(canvas: Canvas) -> Canvas:
    """A structurally equal copy made of new objects."""
    if isinstance(canvas, Message):
        return dataclasses.replace(canvas, args=tuple(canvas.args), kwargs=dict(canvas.kwargs))
    if isinstance(canvas, WithDelay):
        copy = WithDelay(rebuild(canvas.child), 0)
        copy.delay_ms = canvas.delay_ms
        return copy
    if isinstance(canvas, Group):
        return Group(*(rebuild(c) for c in canvas.children))
    return Chain(*(rebuild(s) for s in canvas.steps))


# -- the shell, simulated --------------------------------------------------------------


class Simulator(testing.Simulator):
    """``streamflow.testing.Simulator`` running a ``Case``: the test actors, and the
    case's failures as its outcome plan."""

    def __init__(self, case: Case) -> None:
        super().__init__(case.compiled, actors=ACTORS, fail_until=case.fail_until)
        self.case = case
