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
from bench_report import RATIO_NOTE, checks, render_markdown, render_text
from bench_streamflow import build_app, key_bytes, run

from streamflow import __version__
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
