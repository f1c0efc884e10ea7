"""streamflow's side of ``scripts/bench.py``, run in the benchmark's own process (the peers
run in .venv-peers through scripts/bench_peers.py): the App with its one no-op actor; one
run of a workload W1..W6 with one worker of 8 threads (``run``, which returns the run's
row: the figure, the sizes of the task messages read back from the workflows' histories,
Redis ``used_memory`` growth and the bytes clients wrote); and ``key_bytes``, the memory
of the keys a run left, which ``scripts/bench.py`` measures after every run of either
side.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import redis
from bench_peers import expected_tasks

from streamflow import App, Chain, Group, HistoryBudget
from streamflow.model.events import TaskEnqueued, WorkflowSubmitted
from streamflow.model.messages import encode_task_message


def build_app(url: str) -> tuple[App, dict[str, Any]]:
    # The default budget fails a workflow past 50,000 events; W6 at n = 100,000 writes
    # about 400,000. The warning stays at its default (and is logged).
    app = App(url, history_budget=HistoryBudget(max_events=1_000_000, max_bytes=2**30))

    @app.actor
    def noop(*args: Any) -> int:
        return 1

    return app, {"noop": noop}


def wait_idle(client: redis.Redis, app: App, timeout_s: float = 900) -> None:
    """Until no workflow is active (a benchmark may poll; tests may not)."""
    deadline = time.monotonic() + timeout_s
    key = app.keys.active(0)
    while client.scard(key):
        if time.monotonic() > deadline:
            raise TimeoutError("workflows still active")
        time.sleep(0.02)  # coarse on purpose: polling costs the worker CPU (<0.5 % error)


def message_sizes(app: App, workflow_id: str) -> list[int]:
    """Sizes of the task messages the workflow's TaskEnqueued events put on the queue."""
    history = app.handle(workflow_id).history()
    submitted = history[0].event
    assert isinstance(submitted, WorkflowSubmitted)
    return [
        len(encode_task_message(workflow_id, e.event.node, e.event.attempt, submitted.def_hash))
        for e in history
        if isinstance(e.event, TaskEnqueued)
    ]


def key_bytes(client: redis.Redis) -> int:
    """What the keys left on the (flushed before the run) server take: MEMORY USAGE summed.

    Steadier than ``used_memory`` growth, which also moves with client buffers and the
    allocator's bookkeeping."""
    total = 0
    for key in client.scan_iter(count=1000):
        total += int(client.memory_usage(key, samples=0) or 0)
    return total


def redis_stats(client: redis.Redis) -> tuple[int, int]:
    memory = int(client.info("memory")["used_memory"])
    net_in = int(client.info("stats")["total_net_input_bytes"])
    return memory, net_in


def run(app: App, client: redis.Redis, actors: dict[str, Any], name: str, n: int) -> dict[str, Any]:
    noop = actors["noop"]
    m = noop.message
    ignore = lambda: noop.message_with_options(pipe_ignore=True)  # noqa: E731
    memory_before, net_before = redis_stats(client)
    baseline_keys = 0
    ids: list[str] = []
    started = time.perf_counter()
    if name == "W1":
        worker = app.worker(concurrency=8)
        ids = [app.submit(m()).id for _ in range(n)]
        started = time.perf_counter()
        worker.start()
        wait_idle(client, app)
        elapsed = time.perf_counter() - started
        worker.stop()
        figure, unit = n / elapsed, "tasks/s"
    else:
        with app.worker(concurrency=8):
            # As on the peers' side: the clock starts once the worker has run a task.
            app.submit(m()).result(timeout=60)
            wait_idle(client, app)
            baseline_keys = key_bytes(client)  # the warm-up's, not counted
            memory_before, net_before = redis_stats(client)
            started = time.perf_counter()
            if name in ("W2", "W6"):
                canvas: Any = Chain(m(), Group(*(ignore() for _ in range(n))), m())
                ids = [app.submit(canvas).id]
                app.handle(ids[0]).result(timeout=900)
                elapsed = time.perf_counter() - started
                if name == "W2":
                    figure, unit = elapsed, "s"
                else:
                    figure, unit = elapsed * 1000 / expected_tasks(name, n), "ms/task"
            elif name == "W3":
                ids = [app.submit(Chain(*(m() for _ in range(n)))).id]
                app.handle(ids[0]).result(timeout=900)
                figure, unit = (time.perf_counter() - started) * 1000 / n, "ms/step"
            elif name == "W4":
                seed = Chain(m(), Group(Chain(m(), m()), m(), Chain(m(), Group(m(), m()))), m())
                ids = [app.submit(seed).id for _ in range(n)]
                wait_idle(client, app)
                figure, unit = n / (time.perf_counter() - started), "workflows/s"
            elif name == "W5":
                canvas = Chain(
                    Group(*(m() for _ in range(n))), Group(*(ignore() for _ in range(n)))
                )
                ids = [app.submit(canvas).id]
                app.handle(ids[0]).result(timeout=900)
                figure, unit = time.perf_counter() - started, "s"
            else:
                raise SystemExit(f"unknown workload {name!r}")
            wait_idle(client, app)
    memory_after, net_after = redis_stats(client)
    sizes = [size for i in ids[:200] for size in message_sizes(app, i)]
    return {
        "system": "streamflow",
        "workload": name,
        "n": n,
        "value": figure,
        "unit": unit,
        "tasks": expected_tasks(name, n),
        "largest_message_bytes": max(sizes),
        "median_message_bytes": statistics.median(sizes),
        "used_memory_growth_bytes": memory_after - memory_before,
        "net_input_bytes": net_after - net_before,
        "baseline_key_bytes": baseline_keys,
    }
