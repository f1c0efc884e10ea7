"""What the dashboard's tests share: a real uvicorn server on a free port in a thread,
and a scene to look at (a running workflow, a failed one, a dead letter, a paused
queue, a live worker)."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
from collections.abc import Iterator
from typing import Any

import redis

from streamflow import App, Chain, Group, WorkflowHandle
from tests.waiting import wait_until


@contextlib.contextmanager
def serving(asgi: Any) -> Iterator[str]:
    """Serve ``asgi`` with uvicorn on a free port of 127.0.0.1; yields its base URL."""
    # Imported here: the legs of scripts/test whose venvs lack the web extra still
    # collect these tests (and deselect them, as they are not integration tests).
    import uvicorn

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(64)
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 10, message="uvicorn to start")
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        listening.close()


@dataclasses.dataclass
class Scene:
    """What a scene holds."""

    running: WorkflowHandle
    """step(1) -> [hold(), step(2)] -> step(3): its first task done, hold running."""
    failed: WorkflowHandle
    """step(1) -> boom("x") -> step(2): failed at boom."""
    dead_id: str
    """A dead letter (bytes that are not a task message, on the default queue)."""
    gate: threading.Event
    """Set it and hold() returns."""


@contextlib.contextmanager
def scene(app: App, r: redis.Redis) -> Iterator[Scene]:
    """A worker running two workflows, one stuck in a running task until the scene
    ends, one failed; a dead letter; the queue ``slow`` paused."""
    gate = threading.Event()

    @app.actor
    def step(x: int, prev: Any = None) -> int:
        return x * 10

    @app.actor
    def hold(prev: Any = None) -> str:
        gate.wait(30)
        return "released"

    @app.actor
    def boom(x: str, prev: Any = None) -> None:
        raise ValueError(f"no luck with {x}")

    app.pause(queue="slow")
    with app.worker(concurrency=4):
        try:
            running = app.submit(
                Chain(step.message(1), Group(hold.message(), step.message(2)), step.message(3))
            )
            failed = app.submit(Chain(step.message(1), boom.message("x"), step.message(2)))
            r.xadd(app.keys.queue(0, "default"), {"m": b"not a message"})
            wait_until(lambda: failed.status().status == "failed", 10, message="a failure")
            # hold() running, step(1) and step(2) done (the page shows all four states).
            counts = {"waiting": 1, "queued": 0, "running": 1, "succeeded": 2, "failed": 0}
            wait_until(lambda: running.status().counts == counts, 10, message="hold to start")
            (letter,) = wait_until(lambda: app.dead_letters.list(10), 10, message="a dead letter")
            yield Scene(running=running, failed=failed, dead_id=letter.id, gate=gate)
        finally:
            gate.set()
