"""An app for worker processes started by tests: ``streamflow worker tests.sample_app:app``.

Every task body counts its runs in Redis (``runs:<tag>``) so tests can tell whether a
body ran twice.
"""

from __future__ import annotations

import os
import threading

from streamflow import App, current_task
from streamflow.store.cluster import connect
from tests.helpers import hold

app = App(
    os.environ["STREAMFLOW_REDIS_URL"],
    recovery_grace_ms=0,
    shards=int(os.environ.get("SAMPLE_APP_SHARDS", "0")) or None,  # default: Redis's
)
_client = connect(os.environ["STREAMFLOW_REDIS_URL"])  # a cluster's too


@app.actor
def counted(tag: str, *piped: object) -> str:
    """Count this run and return the tag."""
    _client.incr(f"runs:{tag}")
    return tag


@app.actor
def gather(*piped: object) -> int:
    """Return how many values were piped in (a list counts its items)."""
    value = piped[-1] if piped else []
    return len(value) if isinstance(value, list) else 1


@app.actor
def gated(*piped: object) -> str:
    """Count this run, then wait (up to 60 s) until a test pushes to the ``gate`` list."""
    _client.incr("runs:gated")
    hold(_client, "gate", 60)
    return "through"


@app.actor
def slow(seconds: float, *piped: object) -> str:
    """Work for ``seconds`` (a blocking wait on a list nobody pushes to)."""
    _client.incr("runs:slow")
    hold(_client, "never-pushed", seconds)
    return "slow done"


@app.actor
def crash(*piped: object) -> None:
    """Kill the worker process mid-task (a poison message)."""
    _client.incr("runs:crash")
    os._exit(1)


@app.actor
def work(seconds: float, *piped: object) -> str:
    """Work for ``seconds`` without touching Redis (survives a Redis outage)."""
    threading.Event().wait(seconds)
    return "worked"


@app.actor
def nap(seconds: float, *piped: object) -> str:
    """Count this run, then sleep ``seconds`` without touching Redis (a pause of the
    process or of Redis leaves the body whole)."""
    _client.incr("runs:nap")
    threading.Event().wait(seconds)
    return "rested"


@app.actor
def brief(i: int, *piped: object) -> int:
    """Count this run of task ``i``, then work 20 ms."""
    _client.hincrby("runs:brief", str(i), 1)
    threading.Event().wait(0.02)
    return i


@app.actor
def starts_children(*piped: object) -> list[str]:
    """Start two child workflows (the second detached), count this run, then wait (up to
    60 s) until a test pushes to the ``gate`` list: a test can kill the process between."""
    task = current_task()
    assert task is not None
    first = task.submit(counted.message("first-child"))
    second = task.submit(counted.message("second-child"), detached=True)
    _client.incr("runs:starts_children")
    hold(_client, "gate", 60)
    return [first.id, second.id]
