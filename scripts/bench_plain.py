"""Plain tasks end to end, side by side: W1 and W1r (``scripts/bench --plain``).

W1: 10,000 no-op tasks, one producer process calling each system's ordinary per-task
submit while one worker process (8 threads, or 8 async slots) runs (``--processes 2``:
two worker processes of 8 each, under the system's own supervisor); each system on its
own fresh Redis (a redis-server on a free port), everything at its defaults. The clock
runs from the first submit to the last task done; every task body increments one Redis
counter, which the producer polls. W1r: then read the 10,000 results back one call at
a time. GET: then 10,000 plain redis-py GETs of one small key, one call at a time, in
the same producer: the floor of any read one call at a time, measured in the same run.
W1a (W1-async, the asyncio clients: streamflow's and taskiq's): one event loop submits
10,000 more tasks with at most 100 in flight, then awaits all their results.

Systems: streamflow (results kept, as always), dramatiq (no results: its default),
dramatiq with its Results middleware (for W1r), taskiq with taskiq-redis
(``ListQueueBroker`` and its result backend: the fastest Redis task queue measured).
The peers run from .venv-peers (scripts/_peers_venv.sh).

Per run, beside the wall times: Redis commands per task (INFO commandstats, the
producer's polls and this runner's INFO calls taken out), and CPU per task of the
producer, the worker (its process tree) and Redis (INFO cpu). Runs of the systems take
turns (``--repeat``); each figure is the median. Prints a table; ``--out`` writes it as
JSON too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
SIDE = "scripts/bench_plain_side.py"
PYTHON = {"streamflow": ROOT / ".venv" / "bin" / "python"}
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
SYSTEMS = ("streamflow", "dramatiq", "dramatiq-results", "taskiq")
THREADS = 8
PHASES = ("W1", "W1r", "GET", "W1a")
"""GET: N plain GETs of one small key, one call at a time (the round-trip floor of a
read). W1a (W1-async): one event loop submits N tasks, 100 in flight at most, then awaits
every result; the asyncio clients only."""


BEFORE = "streamflow-before"
"""streamflow from another checkout (``--before``), side by side with this one."""
_before: Path | None = None


def _python(system: str) -> str:
    if system == BEFORE and _before is not None:
        return str(_before / ".venv" / "bin" / "python")
    return str(PYTHON.get(system, PEERS_PYTHON))


def _root(system: str) -> Path:
    return _before if system == BEFORE and _before is not None else ROOT


def _worker_command(system: str, processes: int) -> list[str]:
    python = _python(system)
    if system in ("streamflow", BEFORE):
        command = [python, "-m", "streamflow.cli", "worker", "scripts.bench_plain_side:app",
                   "--concurrency", str(THREADS)]  # fmt: skip
        # A checkout from before --processes runs one process, and knows no such flag.
        if (_root(system) / "streamflow" / "cli" / "supervisor.py").exists():
            command += ["--processes", str(processes)]
        elif processes != 1:
            raise SystemExit(f"{_root(system)}: this streamflow runs one process only")
        return command
    if system.startswith("dramatiq"):
        return [python, "-m", "dramatiq", "scripts.bench_plain_side", "--processes",
                str(processes), "--threads", str(THREADS)]  # fmt: skip
    return [python, "-m", "taskiq", "worker", "scripts.bench_plain_side:broker",
            "--workers", str(processes), "--max-async-tasks", str(THREADS)]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and all its descendants, from /proc;
    descendants that ended count through their parents' (cutime, cstime)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(entry.name)
        children.setdefault(int(fields[1]), []).append(child)
        cpu[child] = sum(int(value) for value in fields[11:15]) / tick
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += cpu.get(current, 0.0)
        stack.extend(children.get(current, []))
    return total


def _server_figures(client: redis.Redis) -> tuple[int, float]:
    """Commands run so far (every command, INFO included) and Redis's CPU seconds."""
    stats: Any = client.info("commandstats")
    commands = sum(int(value["calls"]) for value in stats.values())
    cpu: Any = client.info("cpu")
    return commands, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


class Server:
    """A private redis-server on a free port, with a working directory of its own."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="bench-plain-")
        self.port = _free_port()
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", self.directory,
                   "--maxmemory-policy", "noeviction"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def run_once(system: str, n: int, processes: int = 1) -> dict[str, Any]:
    """One run of W1 (and W1r where the system keeps results); returns its figures."""
    server = Server()
    side = "streamflow" if system == BEFORE else system
    env = {**os.environ, "BENCH_PLAIN_SYSTEM": side, "BENCH_PLAIN_URL": server.url}
    env["STREAMFLOW_REDIS_URL"] = server.url
    phases = {
        "dramatiq": ("W1",),
        "dramatiq-results": ("W1", "W1r", "GET"),
        "taskiq": ("W1", "W1r", "W1a"),
        BEFORE: ("W1", "W1r", "GET"),  # no asyncio client before
    }.get(system, PHASES)
    env["BENCH_PLAIN_ASYNC"] = "1" if "W1a" in phases else ""
    worker = subprocess.Popen(
        _worker_command(system, processes), cwd=_root(system), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    producer = subprocess.Popen(
        [_python(system), SIDE, "--n", str(n)], cwd=_root(system), env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert producer.stdin is not None and producer.stdout is not None
    out: dict[str, Any] = {"system": system, "n": n}
    try:
        if producer.stdout.readline().strip() != "warm":
            raise RuntimeError(f"{system}: the producer did not warm up")
        for phase in phases:
            commands, redis_cpu = _server_figures(server.client)
            worker_cpu = _tree_cpu_s(worker.pid)
            producer.stdin.write("go\n")
            producer.stdin.flush()
            line = producer.stdout.readline()
            if not line:
                raise RuntimeError(f"{system}: the producer ended before {phase}")
            figures = json.loads(line)
            commands_after, redis_cpu_after = _server_figures(server.client)
            # Not the system's: the producer's polls, and the INFO commands of this runner.
            ran = commands_after - commands - figures["polls"] - 2
            out[phase] = {
                "wall_s": figures["wall_s"],
                "per_s": n / figures["wall_s"],
                "commands_per_task": ran / n,
                "redis_cpu_ms_per_task": (redis_cpu_after - redis_cpu) * 1000 / n,
                "worker_cpu_ms_per_task": (_tree_cpu_s(worker.pid) - worker_cpu) * 1000 / n,
                "producer_cpu_ms_per_task": figures["producer_cpu_s"] * 1000 / n,
            }
            if "submit_s" in figures:
                out[phase]["submit_s"] = figures["submit_s"]
        producer.stdin.close()
        producer.wait(timeout=60)
    finally:
        for process in (producer, worker):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        server.close()
    return out


def _median(runs: list[dict[str, Any]], phase: str, field: str) -> float | None:
    values = [r[phase][field] for r in runs if phase in r and field in r[phase]]
    return statistics.median(values) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--out", type=Path, help="write the runs and medians as JSON")
    parser.add_argument(
        "--processes", type=int, default=1, help="worker processes per system (default: 1)"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help=f"also run streamflow from this checkout (a worktree with its .venv), as {BEFORE}",
    )
    args = parser.parse_args()
    if args.before is not None:
        global _before
        _before = args.before.resolve()
        # Its side of the benchmark is this one's (the API it uses is older than both).
        shutil.copy(ROOT / SIDE, _before / SIDE)
        args.systems = [BEFORE, *args.systems]
    if any(s != "streamflow" for s in args.systems):
        subprocess.run(["bash", "-c", "source scripts/_peers_venv.sh"], cwd=ROOT, check=True)
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in args.systems}
    for repeat in range(args.repeat):
        for system in args.systems:  # taking turns: the machine's noise hits all alike
            print(f"run {repeat + 1}/{args.repeat}: {system} ...", file=sys.stderr, flush=True)
            runs[system].append(run_once(system, args.n, args.processes))
    fields = ("per_s", "commands_per_task", "producer_cpu_ms_per_task",
              "worker_cpu_ms_per_task", "redis_cpu_ms_per_task")  # fmt: skip
    table: dict[str, dict[str, Any]] = {}
    for system, rows in runs.items():
        table[system] = {
            phase: {field: _median(rows, phase, field) for field in fields} for phase in PHASES
        }
    base = table.get("dramatiq", {}).get("W1", {}).get("per_s")
    base_r = table.get("dramatiq-results", {}).get("W1r", {}).get("per_s")
    base_a = table.get("taskiq", {}).get("W1a", {}).get("per_s")
    workers = "one worker" if args.processes == 1 else f"{args.processes} worker processes"
    print(f"\n{args.n:,} plain tasks, one producer, {workers} x {THREADS}, medians of "
          f"{args.repeat}; vs peer: W1 vs dramatiq, W1r and GET vs dramatiq + Results' "
          "W1r, W1a vs taskiq's W1a")  # fmt: skip
    header = f"{'system':<18}{'phase':<6}{'per s':>9}{'vs peer':>13}{'cmds/task':>11}"
    print(header + f"{'producer ms':>13}{'worker ms':>11}{'redis ms':>10}  (CPU per task)")
    for system, phases in table.items():
        for phase, row in phases.items():
            if row["per_s"] is None:
                continue
            reference = {"W1": base, "W1a": base_a}.get(phase, base_r)
            versus = f"{row['per_s'] / reference:.2f}x" if reference else "-"
            print(
                f"{system:<18}{phase:<6}{row['per_s']:>9,.0f}{versus:>13}"
                f"{row['commands_per_task']:>11.1f}{row['producer_cpu_ms_per_task']:>13.3f}"
                f"{row['worker_cpu_ms_per_task']:>11.3f}{row['redis_cpu_ms_per_task']:>10.3f}"
            )
    if args.out:
        args.out.write_text(json.dumps({"runs": runs, "medians": table}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
