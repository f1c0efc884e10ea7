"""The records of ``proptests.redis_driver``'s cluster and how a case is shown: a canvas
in a line (``describe``, and ``Planned``, a case whose repr a failing example can be read
from), the canvas of a case's ``Child`` node, a queue message with its place in the
delivery order (``QueueMessage``), what the test keeps per workflow (``Tracked``), and
the index the scripts should hold for a log (``expected_index``).
"""

from __future__ import annotations

import dataclasses

from proptests.simulator import Case, evaluate, task_ids
from streamflow.api.canvas import Canvas, Chain, Group, Message, WithDelay
from streamflow.model.definition import Definition
from streamflow.model.events import Entry
from streamflow.model.index import index_fields
from streamflow.model.state import fold_all

# -- cases, shown briefly --------------------------------------------------------------


def child_canvas(case: Case, node: int) -> Canvas:
    """The canvas of the ``Child`` node ``node`` of a case."""
    messages = dict(zip(task_ids(case.definition), evaluate(case.canvas).messages, strict=True))
    canvas = messages[node].child
    assert canvas is not None, f"node {node} is no Child node"
    return canvas


def describe(canvas: Canvas) -> str:
    """A canvas in a line: ``Chain(f(1), Group(flaky(2, ignore, 1ms)))``."""
    if isinstance(canvas, Message) and canvas.child is not None:
        return f"Child({describe(canvas.child)}, retries={canvas.options.max_retries})"
    if isinstance(canvas, Message):
        parts = [repr(a) for a in canvas.args]
        parts += [f"{k}={v!r}" for k, v in canvas.kwargs.items()]
        parts += ["ignore"] if canvas.pipe_ignore else []
        parts += [f"{canvas.delay_ms}ms"] if canvas.delay_ms else []
        return f"{canvas.actor_name}({', '.join(parts)})"
    if isinstance(canvas, WithDelay):
        return f"WithDelay({describe(canvas.child)}, {canvas.delay_ms}ms)"
    if isinstance(canvas, Group):
        return f"Group({', '.join(describe(c) for c in canvas.children)})"
    assert isinstance(canvas, Chain)
    return f"Chain({', '.join(describe(c) for c in canvas.steps)})"


class Planned:
    """A case, with a repr a failing example can be read from (the canvas in a line,
    and which attempts of which task nodes fail). Not a dataclass: hypothesis would
    print its every field."""

    def __init__(self, case: Case) -> None:
        self.case = case

    def __repr__(self) -> str:
        return f"<{describe(self.case.canvas)} fail_until={self.case.fail_until}>"


# -- the cluster's records -------------------------------------------------------------


@dataclasses.dataclass(frozen=True, order=True)
class QueueMessage:
    order: tuple[int, int, int, tuple[int, int]]
    queue: str
    msg_id: str
    data: bytes
    holder: str | None
    """Consumer whose pending list holds it (None: not yet read)."""


@dataclasses.dataclass
class Tracked:
    """What the test keeps per workflow."""

    workflow_id: str
    case: Case
    entries: list[Entry] = dataclasses.field(default_factory=list)
    """The log as last read (a prefix of every later read)."""
    archived: bool = False


def expected_index(entries: list[Entry], definition: Definition) -> dict[str, bytes]:
    """The index the scripts should hold for this log: the pure fold's, as Redis stores
    it (every value a byte string)."""
    out: dict[str, bytes] = {}
    state = fold_all(entries)
    for field, value in index_fields(state, definition if state.def_hash else None).items():
        out[field] = value if isinstance(value, bytes) else str(value).encode()
    return out
