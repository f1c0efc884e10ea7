"""cProfile of a plain task: the producer's 3,000 ``send()``, then an in-process worker
(8 threads) draining 5,000 one-task workflows, every thread profiled in thread CPU time;
prints the top functions by own time as Markdown (bench/results/reference-plain-profiles.md).

    .venv/bin/python scripts/profile_plain.py   (from a checkout: its streamflow)

Profiling roughly doubles the figures: compare two checkouts, not with the benchmark.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import redis

from streamflow import App

SENDS = 3000
DRAINED = 5000


def _top(profiles: list[cProfile.Profile], title: str, count: int, lines: int = 18) -> None:
    out = io.StringIO()
    stats = pstats.Stats(*profiles, stream=out)  # type: ignore[arg-type]
    stats.sort_stats("tottime").print_stats(lines)
    rows = out.getvalue().splitlines()
    start = next(i for i, row in enumerate(rows) if row.strip().startswith("ncalls"))
    total: float = stats.total_tt  # type: ignore[attr-defined]
    print(f"### {title}: {total / count * 1e6:.0f} us of CPU per task (thread time, profiled)\n")
    print("```")
    for row in rows[start : start + lines + 1]:
        print(row.replace(sys.prefix, "<venv>"))
    print("```\n")


def _server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    server = subprocess.Popen([*command, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return server, url
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _app(url: str) -> tuple[App, Any]:
    app = App(url)

    @app.actor
    def noop() -> int:
        return 1

    return app, noop


def main() -> None:
    server, url = _server()
    try:
        app, noop = _app(url)
        for _ in range(200):
            noop.send()
        producer = cProfile.Profile(time.thread_time)
        producer.enable()
        for _ in range(SENDS):
            noop.send()
        producer.disable()
        _top([producer], f"producer, {SENDS:,} send()", SENDS)
        app.client.flushall()
        app.close()

        app, noop = _app(url)
        for _ in range(DRAINED):
            noop.send()
        profiles: list[cProfile.Profile] = []

        def profile_thread(*_: Any) -> None:
            profile = cProfile.Profile(time.thread_time)
            profiles.append(profile)
            profile.enable()

        threading.setprofile(profile_thread)  # every thread the worker starts
        worker = app.worker(concurrency=8).start()
        while app.client.scard(app.keys.active(0)):
            time.sleep(0.05)
        threading.setprofile(None)  # type: ignore[arg-type]
        worker.stop()
        _top(profiles, f"worker (every thread), draining {DRAINED:,}", DRAINED)
        app.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
