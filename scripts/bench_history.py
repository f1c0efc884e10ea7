"""History tools on a long log: read, audit, replay and export a 100,000-event history.

Runs ``Group(n)`` (three events per task) on a private Redis with no history budget,
then times each tool over the finished workflow's history and measures the Python memory
each one allocates at its peak (tracemalloc). Prints one line per tool and writes JSON
under bench/results/. Usage: scripts/bench-history [--events 100000]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamflow import App, Group, __version__, audit, export_jsonl, import_jsonl, replay
from streamflow.model.events import WorkflowSubmitted
from streamflow.model.state import fold_all
from streamflow.store.embedded import EmbeddedRedis

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"


def measure(name: str, fn: Callable[[], Any], events: int | None) -> tuple[Any, dict[str, Any]]:
    """Time fn (events None: it returns the events, which are then counted)."""
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    value = fn()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # tracemalloc slows allocation-heavy code: time it again without.
    gc.collect()
    started = time.perf_counter()
    fn()
    untraced = time.perf_counter() - started
    if events is None:
        events = len(value)
    row = {
        "tool": name,
        "seconds": untraced,
        "events_per_s": events / untraced,
        "peak_python_memory_mib": peak / 2**20,
        "seconds_under_tracemalloc": elapsed,
    }
    print(
        f"  {name:<16} {untraced:7.2f} s  {events / untraced:>10,.0f} events/s  "
        f"peak {peak / 2**20:7.1f} MiB",
        file=sys.stderr,
    )
    return value, row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    tasks = max(1, args.events // 3)  # Enqueued, Started, Succeeded per task
    with EmbeddedRedis(appendfsync="everysec") as server:
        app = App(server.url, history_budget=None)

        @app.actor
        def noop() -> int:
            return 1

        print(f"running Group({tasks:,}) ...", file=sys.stderr)
        started = time.perf_counter()
        with app.worker(concurrency=8):
            handle = app.submit(Group(*(noop.message() for _ in range(tasks))))
            handle.result(timeout=3600)
        print(f"  ran in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        history, read = measure("read history", lambda: app.history(handle.id), None)
        events = len(history)
        submitted = history[0].event
        assert isinstance(submitted, WorkflowSubmitted)
        definition = app.definitions.get(submitted.def_hash, handle.id)
        rows = [read]
        violations, row = measure("audit", lambda: audit(history, definition), events)
        rows.append(row)
        divergences, row = measure("replay", lambda: replay(history, definition), events)
        rows.append(row)
        _, row = measure("fold", lambda: fold_all(history), events)
        rows.append(row)
        text, row = measure("export", lambda: export_jsonl(handle.id, history, definition), events)
        rows.append(row)
        _, row = measure("import", lambda: import_jsonl(text), events)
        rows.append(row)
        app.close()
    summary = {
        "events": events,
        "tasks": tasks,
        "violations": len(violations),
        "divergences": len(divergences),
        "export_bytes": len(text.encode()),
        "export_bytes_per_event": len(text.encode()) / events,
        "log_bytes_per_event": sum(e.size for e in history) / events,
    }
    print(
        f"{events:,} events: {summary['violations']} violations, "
        f"{summary['divergences']} divergences; export {summary['export_bytes'] / 2**20:.1f} MiB"
        f" ({summary['export_bytes_per_event']:.0f} B/event; "
        f"{summary['log_bytes_per_event']:.0f} B/event in the log)"
    )
    for row in rows:
        print(
            f"{row['tool']:<14} {row['seconds']:7.2f} s {row['events_per_s']:>10,.0f} events/s"
            f"  peak {row['peak_python_memory_mib']:6.1f} MiB"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    meta = {"streamflow": __version__, "python": platform.python_version(), "when": stamp}
    out = RESULTS / f"history-{stamp}.json"
    out.write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
