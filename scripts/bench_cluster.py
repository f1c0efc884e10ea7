"""Scaling out on Redis Cluster (``scripts/bench --cluster``).

The same two worker processes (8 threads each) against one plain Redis, then local
clusters of 1, 2 and 3 masters (redis-server on free loopback ports, ``redis-cli
--cluster create``, no persistence), each fresh. Per topology:

- W1: 10,000 no-op tasks submitted (``submit_many``, chunks of 500) while the workers
  run; the clock runs from the first submit until no workflow is active.
- W4: 200 seed DAGs (8 tasks each) the same way.
- W3: one chain of 200 steps: which masters its commands go to (INFO commandstats).

Beside the throughput, what counts on a 2-core machine, where every process shares the
same cores: the Redis CPU per task and per workflow (``used_cpu_user + used_cpu_sys`` of
every master, INFO cpu), how it divides across the masters (the busiest master's share),
and the worker processes' CPU (``/proc``): throughput bounded by the workers, not by one
master, is the claim. Runs of the topologies take turns (``--repeat``); each figure is
the median. Prints a table; writes JSON and Markdown under bench/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from streamflow import App, Chain, Group  # noqa: E402
from streamflow.store.cluster import connect  # noqa: E402
from streamflow.store.keys import Keys  # noqa: E402
from tests.cluster import LocalCluster, _free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PYTHON = ROOT / ".venv" / "bin" / "python"
WORKERS = 2
THREADS = 8
TOPOLOGIES = ("single", "single16", "1 master", "2 masters", "3 masters")
"""single16: one plain Redis with 16 shards (what sharding costs without a cluster)."""


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Single:
    """One plain redis-server on a free port (no cluster), configured as the nodes are."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.directory = tempfile.mkdtemp(prefix="streamflow-bench-")
        binary = shutil.which("redis-server") or "redis-server"
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", self.directory, "--save", "", "--appendonly", "no"]
        command += ["--stream-node-max-bytes", "512"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}"
        self.ports = [self.port]
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def masters_of(ports: list[int]) -> list[int]:
    """The ports of the masters among ``ports``."""
    return [p for p in ports if redis.Redis(port=p).info("replication")["role"] == "master"]


def node_stats(ports: list[int]) -> dict[int, tuple[float, int]]:
    """Per master: CPU seconds (user + sys) and commands served so far."""
    out: dict[int, tuple[float, int]] = {}
    for port in ports:
        client = redis.Redis(port=port)
        cpu = client.info("cpu")
        calls = sum(int(s["calls"]) for s in client.info("commandstats").values())
        out[port] = (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), calls)
    return out


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_workers(url: str, shards: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts"), "STREAMFLOW_LOG_LEVEL": "WARNING"}
    env["BENCH_SHARDS"] = str(shards)
    command = [str(PYTHON), "-m", "streamflow.cli", "--log-level", "warning", "worker"]
    command += ["bench_cluster_app:app"]
    command += ["--url", url, "--concurrency", str(THREADS), "--processes", "1"]
    return [subprocess.Popen(command, env=env) for _ in range(WORKERS)]


def wait_ready(client: Any, keys: Keys, shards: int, timeout_s: float = 60) -> None:
    """Until every worker process beats on every shard."""
    deadline = time.monotonic() + timeout_s
    while any(client.zcard(keys.beats(s)) < WORKERS for s in range(shards)):
        if time.monotonic() > deadline:
            raise TimeoutError("workers not ready")
        time.sleep(0.1)


def wait_idle(client: Any, keys: Keys, shards: int, timeout_s: float = 600) -> None:
    """Until no workflow is active on any shard (a benchmark may poll; tests may not)."""
    deadline = time.monotonic() + timeout_s
    pipe_keys = [keys.active(s) for s in range(shards)]
    while True:
        pipe = client.pipeline(transaction=False)
        for key in pipe_keys:
            pipe.scard(key)
        if not any(pipe.execute()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("workflows still active")
        time.sleep(0.02)


def measure(
    app: App, client: Any, masters: list[int], pids: list[int], tasks: int, submit: Any
) -> dict[str, Any]:
    """Run ``submit()`` and wait until idle: elapsed, Redis CPU and commands per master,
    the workers' CPU."""
    before, cpu_before = node_stats(masters), [process_cpu(p) for p in pids]
    started = time.perf_counter()
    submit()
    wait_idle(client, app.keys, app.shards)
    elapsed = time.perf_counter() - started
    after, cpu_after = node_stats(masters), [process_cpu(p) for p in pids]
    redis_cpu = {p: after[p][0] - before[p][0] for p in masters}
    calls = {p: after[p][1] - before[p][1] for p in masters}
    total_cpu = sum(redis_cpu.values())
    return {
        "elapsed_s": elapsed,
        "per_s": tasks / elapsed,
        "redis_cpu_us": total_cpu * 1e6 / tasks,
        "busiest_share": max(redis_cpu.values()) / total_cpu if total_cpu else 0.0,
        "busiest_cpu_pct": 100 * max(redis_cpu.values()) / elapsed,
        "redis_cpu_s": redis_cpu,
        "commands": calls,
        "worker_cpu_pct": 100
        * sum(a - b for a, b in zip(cpu_after, cpu_before, strict=True))
        / elapsed,
    }


def one_run(topology: str, n: int, workflows: int, steps: int) -> dict[str, Any]:
    servers: Any = Single() if topology.startswith("single") else None
    if servers is None:
        servers = LocalCluster(shutil.which("redis-server") or "redis-server", int(topology[0]))
        servers.start()
    try:
        masters = masters_of(servers.ports)
        app = App(servers.url, shards=16 if topology == "single16" else None)

        @app.actor
        def noop(*args: Any) -> int:
            return 1

        client: Any = connect(servers.url)
        app.submit(noop.message())  # records the shard count before the workers start
        workers = start_workers(servers.url, app.shards)
        try:
            wait_ready(client, app.keys, app.shards)
            wait_idle(client, app.keys, app.shards)
            pids = [w.pid for w in workers]
            m = noop.message
            plain = [m() for _ in range(500)]

            def w1() -> None:
                for _ in range(n // 500):
                    app.submit_many(plain)

            seed = Chain(m(), Group(Chain(m(), m()), m(), Chain(m(), Group(m(), m()))), m())
            row = {
                "topology": topology,
                "shards": app.shards,
                "W1": measure(app, client, masters, pids, n, w1),
                "W4": measure(
                    app,
                    client,
                    masters,
                    pids,
                    workflows,
                    lambda: app.submit_many([seed] * workflows),
                ),
            }
            chains: list[Any] = []
            long_chain = Chain(*(m() for _ in range(steps)))
            w3 = measure(
                app, client, masters, pids, steps, lambda: chains.append(app.submit(long_chain))
            )
            owner = masters[0]
            if len(masters) > 1:
                owner = int(client.get_node_from_key(app.keys.log(chains[0].id)).port)
            row["W3"] = {
                "ms_per_step": w3["elapsed_s"] * 1000 / steps,
                "commands_per_step_owner": w3["commands"][owner] / steps,
                "commands_per_step_others": sum(c for p, c in w3["commands"].items() if p != owner)
                / steps,
            }
            return row
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(60)
            client.close()
            app.close()
    finally:
        servers.stop()


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over ``runs`` (of one topology)."""
    out: dict[str, Any] = {"topology": runs[0]["topology"], "shards": runs[0]["shards"]}
    for workload in ("W1", "W4", "W3"):
        figures = [k for k, v in runs[0][workload].items() if isinstance(v, float)]
        out[workload] = {k: statistics.median(r[workload][k] for r in runs) for k in figures}
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| topology | shards | W1 tasks/s | Redis CPU/task | busiest master: share, CPU "
        "| workers' CPU "
        "| W4 workflows/s | Redis CPU/workflow | busiest master | W3 ms/step "
        "| commands/step on its master | on the others |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        w1, w4, w3 = r["W1"], r["W4"], r["W3"]
        lines.append(
            f"| {r['topology']} | {r['shards']} | {w1['per_s']:,.0f} | {w1['redis_cpu_us']:.0f} µs "
            f"| {w1['busiest_share']:.0%}, {w1['busiest_cpu_pct']:.0f} % "
            f"| {w1['worker_cpu_pct']:.0f} % | {w4['per_s']:,.0f} "
            f"| {w4['redis_cpu_us']:.0f} µs | {w4['busiest_share']:.0%} | {w3['ms_per_step']:.2f} "
            f"| {w3['commands_per_step_owner']:.1f} | {w3['commands_per_step_others']:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    os.environ.setdefault("STREAMFLOW_LOG_LEVEL", "WARNING")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n", type=int, default=10_000, help="W1 tasks")
    parser.add_argument("--workflows", type=int, default=200, help="W4 seed DAGs")
    parser.add_argument("--steps", type=int, default=200, help="W3 chain steps")
    parser.add_argument(
        "--topologies",
        nargs="+",
        choices=TOPOLOGIES,
        default=[t for t in TOPOLOGIES if t != "single16"],
    )
    args = parser.parse_args()
    if args.n % 500 or args.n < 500:
        parser.error(f"--n must be a multiple of 500 (got {args.n})")
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in args.topologies}
    for i in range(args.repeat):
        for topology in args.topologies:  # the topologies take turns
            row = one_run(topology, args.n, args.workflows, args.steps)
            runs[topology].append(row)
            progress(
                f"run {i + 1} {topology}: W1 {row['W1']['per_s']:,.0f} tasks/s, "
                f"W4 {row['W4']['per_s']:,.0f} workflows/s, "
                f"W3 {row['W3']['ms_per_step']:.2f} ms/step"
            )
    rows = [median_of(runs[t]) for t in args.topologies]
    text = table(rows)
    print(text)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    meta = {
        "when": stamp,
        "commit": commit,
        "cpu_count": os.cpu_count(),
        "workers": f"{WORKERS} processes x {THREADS} threads",
        "repeat": args.repeat,
        "redis_server": subprocess.run(
            [shutil.which("redis-server") or "redis-server", "--version"],
            capture_output=True,
            text=True,
        ).stdout.strip(),
    }
    (RESULTS / f"{stamp}-cluster.json").write_text(
        json.dumps({"meta": meta, "runs": runs, "rows": rows}, indent=2)
    )
    (RESULTS / f"{stamp}-cluster.md").write_text(
        f"# scripts/bench --cluster, {stamp} (commit {commit})\n\n"
        f"{WORKERS} worker processes x {THREADS} threads, medians of {args.repeat} runs; "
        f"W1 {args.n:,} tasks, W4 {args.workflows} seed DAGs, "
        f"W3 one chain of {args.steps} steps.\n\n" + text + "\n"
    )
    progress(f"wrote {RESULTS / stamp}-cluster.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
