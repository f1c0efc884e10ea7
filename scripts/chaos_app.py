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
