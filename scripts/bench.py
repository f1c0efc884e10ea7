"""streamflow benchmarks: W1-W5 on one private Redis, one worker process x 8 threads.

Prints a table and writes JSON and Markdown under bench/results/. Each figure is the
median of ``--repeat`` runs. Memory growth is Redis ``used_memory`` after the run minus
before it (finished workflows are archived, as in production).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import redis

from streamflow import App, Chain, Group, __version__
from streamflow.embedded import EmbeddedRedis
from streamflow.events import TaskEnqueued, WorkflowSubmitted
from streamflow.keys import encode_task_message

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"


def build_app(url: str) -> tuple[App, dict[str, Any]]:
    app = App(url)

    @app.actor
    def noop(*args: Any) -> int:
        return 1

    return app, {"noop": noop}


def wait_idle(client: redis.Redis, app: App, timeout_s: float = 600) -> None:
    """Until no workflow is active (a benchmark may poll; tests may not)."""
    deadline = time.monotonic() + timeout_s
    key = app.keys.active(0)
    while client.scard(key):
        if time.monotonic() > deadline:
            raise TimeoutError("workflows still active")
        time.sleep(0.005)


def largest_message(app: App, workflow_id: str) -> int:
    history = app.handle(workflow_id).history()
    submitted = history[0].event
    assert isinstance(submitted, WorkflowSubmitted)
    return max(
        len(encode_task_message(workflow_id, e.event.node, e.event.attempt, submitted.def_hash))
        for e in history
        if isinstance(e.event, TaskEnqueued)
    )


def run(
    app: App, client: redis.Redis, actors: dict[str, Any], name: str, quick: bool
) -> dict[str, Any]:
    noop = actors["noop"]
    m = noop.message
    ignore = lambda: noop.message_with_options(pipe_ignore=True)  # noqa: E731
    before = int(client.info("memory")["used_memory"])
    ids: list[str] = []
    started = time.perf_counter()
    if name == "W1":
        n = 1000 if quick else 10_000
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
            if name == "W2":
                n = 100 if quick else 1000
                canvas: Any = Chain(m(), Group(*(ignore() for _ in range(n))), m())
                ids = [app.submit(canvas).id]
                app.handle(ids[0]).result(timeout=600)
                figure, unit = time.perf_counter() - started, "s"
            elif name == "W3":
                n = 50 if quick else 500
                ids = [app.submit(Chain(*(m() for _ in range(n)))).id]
                app.handle(ids[0]).result(timeout=600)
                figure, unit = (time.perf_counter() - started) * 1000 / n, "ms/step"
            elif name == "W4":
                n = 20 if quick else 200
                seed = Chain(m(), Group(Chain(m(), m()), m(), Chain(m(), Group(m(), m()))), m())
                ids = [app.submit(seed).id for _ in range(n)]
                wait_idle(client, app)
                figure, unit = n / (time.perf_counter() - started), "workflows/s"
            elif name == "W5":
                n = 100 if quick else 1000
                canvas = Chain(
                    Group(*(m() for _ in range(n))), Group(*(ignore() for _ in range(n)))
                )
                ids = [app.submit(canvas).id]
                app.handle(ids[0]).result(timeout=600)
                figure, unit = time.perf_counter() - started, "s"
            else:
                raise SystemExit(f"unknown workload {name!r}")
            wait_idle(client, app)
    after = int(client.info("memory")["used_memory"])
    return {
        "workload": name,
        "value": figure,
        "unit": unit,
        "largest_message_bytes": max(largest_message(app, i) for i in ids[:50]),
        "used_memory_growth_bytes": after - before,
    }


WORKLOADS = {
    "W1": "10,000 independent tasks",
    "W2": "Chain(a, Group(1000), c)",
    "W3": "chain of 500 steps",
    "W4": "seed DAG x 200 concurrent",
    "W5": "Chain(Group(1000), Group(1000))",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS))
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    names = args.only or sorted(WORKLOADS)
    rows = []
    with EmbeddedRedis(appendfsync="everysec") as server:
        client = redis.Redis.from_url(server.url)
        for name in names:
            runs = []
            for i in range(repeat):
                client.flushall()
                app, actors = build_app(server.url)
                runs.append(run(app, client, actors, name, args.quick))
                app.close()
                print(
                    f"  {name} run {i + 1}: {runs[-1]['value']:.3f} {runs[-1]['unit']}",
                    file=sys.stderr,
                )
            row = dict(runs[0])
            for field in ("value", "largest_message_bytes", "used_memory_growth_bytes"):
                row[field] = statistics.median(r[field] for r in runs)
            row["runs"] = [r["value"] for r in runs]
            rows.append(row)
    header = (
        f"{'workload':<8} {'what':<34} {'median':>12} {'unit':<12} "
        f"{'max msg B':>9} {'mem growth':>12}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['workload']:<8} {WORKLOADS[row['workload']]:<34} {row['value']:>12.3f} "
            f"{row['unit']:<12} {row['largest_message_bytes']:>9.0f} "
            f"{row['used_memory_growth_bytes'] / 1024:>9.0f} KiB"
        )
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    meta = {
        "streamflow": __version__,
        "python": platform.python_version(),
        "machine": platform.platform(),
        "quick": args.quick,
        "repeat": repeat,
        "when": stamp,
    }
    (RESULTS / f"{stamp}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    md = [
        "| workload | what | median | unit | largest message (B) | used_memory growth (KiB) |",
        "|---|---|---:|---|---:|---:|",
    ]
    for row in rows:
        md.append(
            f"| {row['workload']} | {WORKLOADS[row['workload']]} | {row['value']:.3f} "
            f"| {row['unit']} | {row['largest_message_bytes']:.0f} "
            f"| {row['used_memory_growth_bytes'] / 1024:.0f} |"
        )
    (RESULTS / f"{stamp}.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
