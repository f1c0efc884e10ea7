"""The app chaos workers run (``streamflow worker scripts.chaos_app:app``)."""

from __future__ import annotations

import os
import random
import threading

from streamflow import App

app = App(os.environ["STREAMFLOW_REDIS_URL"], recovery_grace_ms=1000)


@app.actor
def tag(name: str, *piped: object) -> str:
    """Return ``name`` after a few milliseconds of work."""
    threading.Event().wait(random.uniform(0, 0.005))
    return name


_client = app.client


@app.actor
def brief(i: int, *piped: object) -> int:
    """Count this run of task ``i``, then work 20 ms."""
    _client.hincrby("runs:brief", str(i), 1)
    threading.Event().wait(0.02)
    return i


@app.actor(max_retries=3, min_backoff=0.05)
def flaky(name: str, *piped: object) -> str:
    """Fail the first attempt of each ``name``, then return it."""
    if _client.hincrby("tries:flaky", name, 1) == 1:
        raise RuntimeError(f"{name}: the first attempt fails")
    return name
