"""``streamflow demo``: the seed DAG and a 1,000-task group on an embedded Redis."""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from typing import Any

from streamflow.api.app import App
from streamflow.api.canvas import Chain, Group
from streamflow.api.handles import WorkflowHandle
from streamflow.model.events import TaskEnqueued, WorkflowSubmitted
from streamflow.model.messages import encode_task_message


def _largest_message(handle: WorkflowHandle[Any]) -> tuple[int, int]:
    """Largest queue message (bytes) and log length, from the workflow's history."""
    history = handle.history()
    submitted = history[0].event
    assert isinstance(submitted, WorkflowSubmitted)
    largest = 0
    for entry in history:
        if isinstance(entry.event, TaskEnqueued):
            message = encode_task_message(
                handle.id, entry.event.node, entry.event.attempt, submitted.def_hash
            )
            largest = max(largest, len(message))
    return largest, len(history)


def _run_with_progress(app: App, name: str, canvas: Any) -> None:
    started = time.monotonic()
    handle = app.submit(canvas)
    while True:
        status = handle.status()
        total = sum(status.counts.values())
        done = status.counts["succeeded"]
        print(f"\r  {name}: {done}/{total} tasks done", end="", flush=True)
        if status.done:
            break
        with contextlib.suppress(TimeoutError):
            handle.wait(timeout=0.5)
    elapsed = time.monotonic() - started
    result = handle.result(timeout=1)
    largest, events = _largest_message(handle)
    shown = repr(result)
    if len(shown) > 100:
        shown = shown[:97] + "..."
    print(f"\r  {name}: {done}/{total} tasks done in {elapsed:.2f} s")
    print(f"    result          {shown}")
    print(f"    largest message {largest} bytes")
    print(f"    log length      {events} events")


def cmd_demo(args: argparse.Namespace) -> int:
    print("streamflow demo: starting an embedded Redis and an in-process worker")
    app = App(os.environ.get("STREAMFLOW_REDIS_URL") or None)

    @app.actor
    def t1() -> int:
        return 3

    @app.actor
    def double(x: int) -> int:
        return x * 2

    @app.actor
    def increment(x: int) -> int:
        return x + 1

    @app.actor
    def times_ten(x: int) -> int:
        return x * 10

    @app.actor
    def square(x: int) -> int:
        return x * x

    @app.actor
    async def negate(x: int) -> int:
        return -x

    @app.actor
    def summarize(parts: list[Any]) -> str:
        return f"t8 got {parts}"

    @app.actor
    def item(i: int) -> int:
        return i

    @app.actor
    def total(values: list[int]) -> int:
        return sum(values)

    with app.worker(concurrency=8):
        # The seed DAG: Chain(t1, Group(Chain(t2, t5), t3, Chain(t4, Group(t6, t7))), t8)
        seed = Chain(
            t1.message(),
            Group(
                Chain(double.piped(), increment.piped()),
                times_ten.piped(),
                Chain(increment.piped(), Group(square.piped(), negate.piped())),
            ),
            summarize.piped(),
        )
        _run_with_progress(app, "seed DAG (8 tasks)", seed)
        wide = Chain(
            t1.message(),
            Group(*(item.message_with_options(args=(i,), pipe_ignore=True) for i in range(1000))),
            total.piped(),
        )
        _run_with_progress(app, "Chain(a, Group(1000), c)", wide)
    app.close()  # before the embedded server stops at exit: its subscription ends quietly
    return 0
