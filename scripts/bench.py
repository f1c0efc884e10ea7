"""streamflow benchmarks, side by side with dramatiq, dramatiq-workflow and Celery.

Every system runs on the same private Redis (one server, TCP on 127.0.0.1, flushed
before each run) with one worker process x 8 threads and trivial task bodies. The peers
run in their own venv (.venv-peers, see scripts/_peers_venv.sh) through
scripts/bench_peers.py, one subprocess per run; streamflow runs in this process.

Each figure is the median of ``--repeat`` runs. For every run we also record the largest
and median queue message, Redis ``used_memory`` growth (after the run minus before it;
streamflow archives finished workflows, as in production), the memory of the keys the
run left (MEMORY USAGE summed: the per-task memory figure) and the bytes clients wrote to
Redis (``total_net_input_bytes`` delta, every client of the server counted).

Prints a table, the targets with pass/fail, and writes JSON and Markdown under
bench/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
from bench_peers import FULL_SIZES, NOT_RUN, QUICK_SIZES, SUPPORTED, expected_tasks

from streamflow import App, Chain, Group, HistoryBudget, __version__
from streamflow.model.events import TaskEnqueued, WorkflowSubmitted
from streamflow.model.messages import encode_task_message
from streamflow.store.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
SYSTEMS = ("streamflow", "dramatiq", "dramatiq-workflow", "celery")
PEERS = SYSTEMS[1:]
WORKLOADS = {
    "W1": "10,000 independent tasks",
    "W2": "Chain(a, Group(1000), c)",
    "W3": "chain of 500 steps",
    "W4": "seed DAG x 200 concurrent",
    "W5": "Chain(Group(1000), Group(1000))",
    "W6": "Chain(a, Group(n), c)",
}
W6_SIZES = (10, 100, 1000, 10_000, 100_000)
W6_QUICK_SIZES = (10, 100, 1000)
HIGHER_IS_BETTER = {"tasks/s", "workflows/s"}
METRICS = (
    "value",
    "largest_message_bytes",
    "median_message_bytes",
    "used_memory_growth_bytes",
    "key_bytes",
    "net_input_bytes",
)


def _commit() -> str:
    """The checkout's commit, with ``+changes`` when the tree differs from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    return (head or "unknown") + ("+changes" if dirty else "")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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


def run_peer(system: str, name: str, n: int, url: str) -> dict[str, Any]:
    command = [
        str(PEERS_PYTHON),
        str(ROOT / "scripts" / "bench_peers.py"),
        "--system", system, "--workload", name, "--n", str(n), "--url", url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"bench_peers exited {done.returncode}: {' | '.join(tail)}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ensure_peers_venv() -> None:
    """Create or update .venv-peers (a no-op when scripts/bench_peers.txt is unchanged)."""
    subprocess.run(["bash", "-c", "source scripts/_peers_venv.sh"], cwd=ROOT, check=True)


def sizes_for(name: str, quick: bool) -> tuple[int, ...]:
    if name == "W6":
        return W6_QUICK_SIZES if quick else W6_SIZES
    return ((QUICK_SIZES if quick else FULL_SIZES)[name],)


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    row = dict(runs[0])
    for field in METRICS:
        row[field] = statistics.median(r[field] for r in runs)
    row["runs"] = [r["value"] for r in runs]
    row["memory_per_task_bytes"] = row["key_bytes"] / row["tasks"]
    return row


def skip_reason(
    system: str, name: str, n: int, rows: list[dict[str, Any]], args: argparse.Namespace
) -> str | None:
    """Why this run is not made, or None. n = 100,000 runs only if its estimate fits."""
    if system != "streamflow" and name not in SUPPORTED[system]:
        return NOT_RUN[system, name]
    if name != "W6" or n < 100_000:
        return None
    previous = [
        r for r in rows if r["system"] == system and r["workload"] == "W6" and r["n"] == 10_000
    ]
    if not previous or "value" not in previous[0]:
        return "not run: n = 10,000 did not run"
    estimate_s = previous[0]["value"] / 1000 * expected_tasks("W6", n)
    if estimate_s > args.w6_budget_s:
        return (
            f"not run: estimated {estimate_s:.0f} s from n = 10,000 "
            f"(budget --w6-budget-s {args.w6_budget_s:.0f} s)"
        )
    return None


def start_profiler(out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy recording this process, or None (said on stderr) if it cannot attach."""
    candidates = [os.environ.get("PY_SPY", ""), str(ROOT / ".venv-peers" / "bin" / "py-spy")]
    found = [c for c in candidates if c and Path(c).is_file()]
    binary = shutil.which("py-spy") or (found[0] if found else None)
    if binary is None:
        progress("--profile: py-spy is not on PATH nor in .venv-peers; profiling skipped")
        return None
    command = [binary, "record", "--pid", str(os.getpid()), "--rate", "200", "-o", str(out)]
    profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(2)
    if profiler.poll() is not None:
        error = profiler.stderr.read().decode(errors="replace").strip() if profiler.stderr else ""
        progress(f"--profile: py-spy could not attach, continuing without it: {error}")
        return None
    progress(f"--profile: py-spy is recording streamflow's side into {out}")
    return profiler


def stop_profiler(profiler: subprocess.Popen[bytes] | None, out: Path) -> str | None:
    if profiler is None:
        return None
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=120)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()
    if out.is_file():
        progress(f"--profile: flame graph written to {out}")
        return str(out.relative_to(ROOT))
    progress("--profile: py-spy wrote no flame graph")
    return None


def ratio(row: dict[str, Any], reference: dict[str, Any] | None) -> float | None:
    """streamflow's advantage over a peer: > 1 means streamflow is better."""
    if reference is None or "value" not in row or "value" not in reference:
        return None
    if row["system"] == "streamflow" or not row["value"] or not reference["value"]:
        return None
    if row["unit"] in HIGHER_IS_BETTER:
        return float(reference["value"] / row["value"])
    return float(row["value"] / reference["value"])


def find(rows: list[dict[str, Any]], system: str, name: str, n: int | None = None) -> Any:
    for row in rows:
        same = row["system"] == system and row["workload"] == name
        if same and "value" in row and (n is None or row["n"] == n):
            return row
    return None


def checks(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The issue's targets: (target, PASS/FAIL/n/a, measured)."""
    out: list[tuple[str, str, str]] = []

    def add(target: str, ok: bool | None, measured: str) -> None:
        out.append((target, "n/a" if ok is None else "PASS" if ok else "FAIL", measured))

    sf, dq = find(rows, "streamflow", "W1"), find(rows, "dramatiq", "W1")
    add(
        "W1 >= 1.5x plain dramatiq tasks/s",
        None if not (sf and dq) else sf["value"] >= 1.5 * dq["value"],
        f"{sf['value'] / dq['value']:.2f}x" if sf and dq else "missing",
    )
    sf, dw = find(rows, "streamflow", "W2"), find(rows, "dramatiq-workflow", "W2")
    add(
        "W2 >= 3x faster than dramatiq-workflow",
        None if not (sf and dw) else dw["value"] >= 3 * sf["value"],
        f"{dw['value'] / sf['value']:.2f}x" if sf and dw else "missing",
    )
    sf, dw = find(rows, "streamflow", "W4"), find(rows, "dramatiq-workflow", "W4")
    add(
        "W4 >= 3x dramatiq-workflow's workflows/s",
        None if not (sf and dw) else sf["value"] >= 3 * dw["value"],
        f"{sf['value'] / dw['value']:.2f}x" if sf and dw else "missing",
    )
    sf = find(rows, "streamflow", "W3")
    add(
        "W3 <= 2 ms/step",
        None if not sf else sf["value"] <= 2,
        f"{sf['value']:.3f} ms/step" if sf else "missing",
    )
    w2, w5 = find(rows, "streamflow", "W2"), find(rows, "streamflow", "W5")
    add(
        "W5 <= 2.5x W2's time",
        None if not (w2 and w5) else w5["value"] <= 2.5 * w2["value"],
        f"{w5['value'] / w2['value']:.2f}x" if w2 and w5 else "missing",
    )
    w6 = [r for r in rows if r["system"] == "streamflow" and r["workload"] == "W6"]
    flat = [r for r in w6 if r["n"] >= 100 and "value" in r]
    if flat:
        mid = statistics.median(r["value"] for r in flat)
        spread = max(abs(r["value"] / mid - 1) for r in flat)
        ns = ", ".join(f"{r['n']:,}" for r in flat)
        complete = any(r["n"] == 100_000 for r in flat)
        add(
            "W6 time/task flat within +-25% from n=100 to n=100,000",
            spread <= 0.25 if complete else None if spread <= 0.25 else False,
            f"max deviation {spread:.0%} from the median over n = {ns}"
            + ("" if complete else " (n = 100,000 missing)"),
        )
    else:
        add("W6 time/task flat within +-25% from n=100 to n=100,000", None, "missing")
    measured = [r for r in w6 if "value" in r]
    largest = max((r["largest_message_bytes"] for r in measured), default=None)
    add(
        "W6 no message over 200 B at any n",
        None if largest is None else largest <= 200,
        f"largest {largest:.0f} B" if largest is not None else "missing",
    )
    # Fixed costs (scripts, connections) swamp the per-task figure of small runs.
    mem = [r for r in rows if r["system"] == "streamflow" and "value" in r and r["tasks"] >= 1000]
    worst = max(mem, key=lambda r: r["memory_per_task_bytes"], default=None)
    add(
        "Redis memory (keys kept) <= 400 B per finished task (streamflow, >= 1,000 tasks)",
        None if worst is None else worst["memory_per_task_bytes"] <= 400,
        (
            f"worst {worst['memory_per_task_bytes']:.0f} B/task "
            f"({worst['workload']} n={worst['n']:,})"
        )
        if worst
        else "missing",
    )
    return out


RATIO_NOTE = (
    "sf adv. = streamflow's advantage, > 1 means streamflow is better: "
    "peer time / streamflow time for s, ms/step and ms/task; "
    "streamflow rate / peer rate for tasks/s and workflows/s"
)


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for row in rows:
        head = [row["workload"], f"{row['n']:,}", row["system"]]
        if "value" not in row:
            out.append([*head, row["reason"]])
            continue
        reference = find(rows, "streamflow", row["workload"], row["n"])
        r = ratio(row, reference)
        out.append(
            [
                *head,
                f"{row['value']:.3f}",
                row["unit"],
                "" if r is None else f"{r:.2f}",
                f"{row['largest_message_bytes']:,.0f}",
                f"{row['median_message_bytes']:,.0f}",
                f"{row['used_memory_growth_bytes'] / 1024:,.0f}",
                f"{row['memory_per_task_bytes']:,.0f}",
                f"{row['net_input_bytes'] / 1024:,.0f}",
            ]
        )
    return out


COLUMNS = [
    "workload", "n", "system", "median", "unit", "sf adv.", "max msg B", "median msg B",
    "mem growth KiB", "keys B/task", "net in KiB",
]  # fmt: skip


def render_text(rows: list[dict[str, Any]], verdicts: list[tuple[str, str, str]]) -> str:
    body = table_rows(rows)
    widths = [len(c) for c in COLUMNS]
    for cells in body:
        if len(cells) == len(COLUMNS):
            widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=True)]
    lines = [RATIO_NOTE, "  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines.append("-" * len(lines[-1]))
    for cells in body:
        if len(cells) == len(COLUMNS):
            lines.append("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
        else:
            lead = "  ".join(c.rjust(w) for c, w in zip(cells[:3], widths, strict=False))
            lines.append(f"{lead}  {cells[3]}")
    lines += ["", "targets:"]
    lines += [f"  [{status:>4}] {target}: {measured}" for target, status, measured in verdicts]
    return "\n".join(lines)


def render_markdown(
    rows: list[dict[str, Any]], verdicts: list[tuple[str, str, str]], meta: dict[str, Any]
) -> str:
    md = [f"# Benchmark {meta['when']}", ""]
    md += [f"- {key}: {value}" for key, value in meta.items()]
    md += ["", RATIO_NOTE + ".", "", "| " + " | ".join(COLUMNS) + " |"]
    md.append("|" + "---|" * 3 + "---:|---|" + "---:|" * (len(COLUMNS) - 5))
    for cells in table_rows(rows):
        if len(cells) < len(COLUMNS):
            cells = [*cells, *([""] * (len(COLUMNS) - len(cells)))]
        md.append("| " + " | ".join(cells) + " |")
    md += ["", "## Targets", "", "| target | result | measured |", "|---|---|---|"]
    md += [f"| {target} | {status} | {measured} |" for target, status, measured in verdicts]
    return "\n".join(md) + "\n"


def main() -> int:
    # Workers' info lines (start, stop, submit) would bury the progress lines.
    os.environ.setdefault("STREAMFLOW_LOG_LEVEL", "WARNING")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS))
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--profile", action="store_true", help="py-spy flame graph of streamflow")
    parser.add_argument(
        "--w6-budget-s",
        type=float,
        default=300,
        help="run W6 n=100,000 only if one run's estimate (from n=10,000) fits in this many s",
    )
    args = parser.parse_args()
    args.repeat = 1 if args.quick else args.repeat
    names = args.only or sorted(WORKLOADS)
    peers = [s for s in args.systems if s in PEERS]
    if peers or args.profile:
        ensure_peers_venv()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    svg = RESULTS / f"{stamp}-streamflow.svg"
    profiler = start_profiler(svg) if args.profile and "streamflow" in args.systems else None
    rows: list[dict[str, Any]] = []
    with EmbeddedRedis(appendfsync="everysec", port=free_port()) as server:
        url = server.url
        client = redis.Redis.from_url(url)
        server_info = client.info("server")
        for name in names:
            for n in sizes_for(name, args.quick):
                for system in args.systems:
                    reason = skip_reason(system, name, n, rows, args)
                    if reason is not None:
                        # Rows for what the brief names; not for plain dramatiq's W2..W6.
                        if system in ("streamflow", "celery") or name in SUPPORTED[system]:
                            rows.append(
                                {"system": system, "workload": name, "n": n, "reason": reason}
                            )
                        progress(f"{name} n={n:,} {system}: {reason}")
                        continue
                    runs: list[dict[str, Any]] = []
                    for i in range(args.repeat):
                        # Said before each run too: a long one shows what it is on.
                        progress(f"{name} n={n:,} {system} run {i + 1}/{args.repeat} ...")
                        client.flushall()
                        try:
                            if system == "streamflow":
                                app, actors = build_app(url)
                                try:
                                    runs.append(run(app, client, actors, name, n))
                                finally:
                                    app.close()
                            else:
                                runs.append(run_peer(system, name, n, url))
                            baseline = runs[-1].pop("baseline_key_bytes", 0)
                            runs[-1]["key_bytes"] = key_bytes(client) - baseline
                        except Exception as e:  # recorded in the row
                            progress(f"{name} n={n:,} {system} run {i + 1}: failed: {e}")
                            runs = []
                            rows.append(
                                {
                                    "system": system,
                                    "workload": name,
                                    "n": n,
                                    "reason": f"failed: {e}",
                                }
                            )
                            break
                        last = runs[-1]
                        progress(
                            f"{name} n={n:,} {system} run {i + 1}: "
                            f"{last['value']:.3f} {last['unit']}"
                        )
                    if runs:
                        rows.append(median_row(runs))
    svg_path = stop_profiler(profiler, svg)
    verdicts = checks(rows)
    peer_versions: dict[str, str] = {}
    if peers:
        done = subprocess.run(
            [str(PEERS_PYTHON), str(ROOT / "scripts" / "bench_peers.py"), "--versions"],
            capture_output=True,
            text=True,
            check=True,
        )
        peer_versions = json.loads(done.stdout)
    meta: dict[str, Any] = {
        "when": stamp,
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "streamflow": __version__,
        "commit": _commit(),
        "redis_server": server_info.get("valkey_version") or server_info.get("redis_version"),
        "server_kind": "valkey" if "valkey_version" in server_info else "redis",
        **peer_versions,
        "transport": "TCP 127.0.0.1, appendfsync everysec, one worker process x 8 threads",
        "quick": args.quick,
        "repeat": args.repeat,
        "systems": " ".join(args.systems),
    }
    if svg_path:
        meta["flame_graph"] = svg_path
    print(render_text(rows, verdicts))
    payload = {
        "meta": meta,
        "ratio": RATIO_NOTE,
        "rows": rows,
        "targets": [{"target": t, "result": s, "measured": m} for t, s, m in verdicts],
    }
    (RESULTS / f"{stamp}.json").write_text(json.dumps(payload, indent=2))
    (RESULTS / f"{stamp}.md").write_text(render_markdown(rows, verdicts, meta))
    progress(f"wrote {RESULTS / stamp}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
