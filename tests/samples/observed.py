"""An app whose worker processes tests observe from outside (metrics, traces):
``streamflow worker tests.samples.observed:app``. Its actors succeed, fail once then
succeed, always fail, or wait until a test pushes to a list; ``actors(app)`` registers
the same ones on a test's own App, to submit them."""

from __future__ import annotations

import os
from typing import Any

from streamflow import App
from streamflow.store.cluster import connect
from tests.helpers import hold


def actors(app: App) -> dict[str, Any]:
    """Register the actors on ``app``; returns them by name."""
    client = connect(app.url)

    @app.actor
    def fine(x: int) -> int:
        return x

    @app.actor
    def step(tag: str, *piped: object) -> str:
        return tag

    @app.actor(max_retries=1, min_backoff=0.01)
    def flaky(tag: str, *piped: object) -> str:
        if client.incr(f"flaky:{tag}") == 1:
            raise RuntimeError("fails the first time")
        return tag

    @app.actor(queue="risky")
    def broken() -> None:
        raise RuntimeError("always fails")

    @app.actor
    def held(key: str) -> str:
        """Run until a test pushes to the list ``key`` (at most 30 s)."""
        hold(client, key, 30)
        return key

    return {"fine": fine, "step": step, "flaky": flaky, "broken": broken, "held": held}


if "STREAMFLOW_REDIS_URL" in os.environ:  # imported by a worker process
    app = App(os.environ["STREAMFLOW_REDIS_URL"])
    actors(app)
