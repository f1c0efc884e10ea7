"""The App the cluster benchmark's worker processes serve (``scripts/bench_cluster.py``):
one no-op actor; the URL comes from ``--url`` (``STREAMFLOW_REDIS_URL``), the shard
count from ``BENCH_SHARDS`` (else the default)."""

from __future__ import annotations

import os
from typing import Any

from streamflow import App

app = App(shards=int(os.environ.get("BENCH_SHARDS", "0")) or None)


@app.actor
def noop(*args: Any) -> int:
    return 1
