"""Peer runners for scripts/bench: dramatiq, dramatiq-workflow and Celery on one Redis.

Runs in the peers' own venv, never in the project's (scripts/_peers_venv.sh makes it):

    .venv-peers/bin/python scripts/bench_peers.py --system celery --workload W2 \\
        --url redis://127.0.0.1:6399/0 [--quick] [--n N]

One invocation is one run: start the peer's worker as a subprocess (one process x 8
threads), wait until a warm-up task has run, submit the workload, wait until the worker
says every task finished, stop the worker and print one JSON object on stdout. W1 is the
exception: its tasks are queued before the worker starts, as on streamflow's side, and
its clock starts when the first task starts.

This file is also the worker's module: the worker imports it with the BENCH_PEERS_*
variables set, and it then defines the broker or app, the actors and a probe. The probe
counts finished tasks in memory (no Redis call per task); when the count reaches the
expected total it writes the end time and the sizes of the messages it published to a
file, then pushes one item to a Redis list that the runner blocks on. The peers' classes
and the probe are in scripts/bench_peers_systems.py.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import redis
from bench_peers_systems import (
    DONE_KEY,
    ENV_EXPECT,
    ENV_PROBE,
    ENV_SYSTEM,
    ENV_URL,
    PROBE,
    WARM_KEY,
    CeleryPeer,
    DramatiqPeer,
    Peer,
)

SYSTEMS = ("dramatiq", "dramatiq-workflow", "celery")
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6")
SUPPORTED = {
    "dramatiq": {"W1"},
    "dramatiq-workflow": {"W2", "W3", "W4", "W5", "W6"},
    "celery": {"W1", "W2", "W3", "W5", "W6"},
}
# Why a peer does not run a workload; scripts/bench prints this in the row.
NOT_RUN = {
    ("dramatiq", w): "plain dramatiq has no chain/group canvas (see dramatiq-workflow)"
    for w in ("W2", "W3", "W4", "W5", "W6")
} | {
    ("dramatiq-workflow", "W1"): "W1 has no workflow (see plain dramatiq)",
    ("celery", "W4"): (
        "cannot express: a chord whose header holds a chain ending in a group (the seed "
        "DAG's Chain(t4, Group(t6, t7)) before t8) fails in Celery 5.7 with 'Never call "
        "result.get() within a task!' once workflows overlap, and t8 never runs"
    ),
}
FULL_SIZES = {"W1": 10_000, "W2": 1000, "W3": 500, "W4": 200, "W5": 1000}
QUICK_SIZES = {"W1": 1000, "W2": 100, "W3": 50, "W4": 20, "W5": 100}
READY_TIMEOUT_S = 60


def expected_tasks(workload: str, n: int) -> int:
    return {"W1": n, "W2": n + 2, "W3": n, "W4": 8 * n, "W5": 2 * n, "W6": n + 2}[workload]


def make_peer(system: str, url: str) -> Peer:
    if system == "dramatiq":
        return DramatiqPeer(url, workflow=False)
    if system == "dramatiq-workflow":
        return DramatiqPeer(url, workflow=True)
    if system == "celery":
        return CeleryPeer(url)
    raise ValueError(f"'system' must be one of {SYSTEMS!r} (got {system!r})")


# The worker imports this module with the variables set: define what it looks for
# (dramatiq: ``bench_peers:broker``; celery: ``-A bench_peers`` finds ``app``).
broker: Any = None
app: Any = None
if os.environ.get(ENV_SYSTEM) and os.environ.get(ENV_URL):
    _peer = make_peer(os.environ[ENV_SYSTEM], os.environ[ENV_URL])
    broker = getattr(_peer, "broker", None)
    app = getattr(_peer, "app", None)


def redis_stats(client: redis.Redis) -> tuple[int, int]:
    memory = int(client.info("memory")["used_memory"])
    net_in = int(client.info("stats")["total_net_input_bytes"])
    return memory, net_in


def wait_for(
    client: redis.Redis, key: str, timeout_s: float, worker: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout_s
    while client.blpop([key], timeout=1) is None:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {key!r} within {timeout_s:.0f} s")


def stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def run(system: str, workload: str, n: int, url: str, timeout_s: float) -> dict[str, Any]:
    expect = expected_tasks(workload, n)
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        probe_path = Path(tmp) / "probe.json"
        env = {
            ENV_SYSTEM: system,
            ENV_URL: url,
            ENV_EXPECT: str(expect),
            ENV_PROBE: str(probe_path),
        }
        os.environ.update(env)
        peer = make_peer(system, url)
        client = redis.Redis.from_url(url)
        client.delete(WARM_KEY, DONE_KEY)
        worker_env = dict(os.environ)
        worker_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH")) if p
        )
        log_path = Path(tmp) / "worker.log"
        with log_path.open("wb") as log:
            memory_before, net_before = redis_stats(client)
            if workload == "W1":
                # Queued before the worker exists; the clock starts at the first task.
                for _ in range(n):
                    peer.send_noop()
            worker = subprocess.Popen(
                peer.worker_cmd, env=worker_env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                started = 0.0
                if workload != "W1":
                    peer.send_warmup()
                    wait_for(client, WARM_KEY, READY_TIMEOUT_S, worker)
                    PROBE.sizes.clear()
                    memory_before, net_before = redis_stats(client)
                    started = time.time()
                    peer.submit(workload, n)
                wait_for(client, DONE_KEY, timeout_s, worker)
                memory_after, net_after = redis_stats(client)
            except BaseException:
                stop(worker)
                sys.stderr.write(log_path.read_text(errors="replace")[-3000:])
                raise
            stop(worker)
        report = json.loads(probe_path.read_text())
    if workload == "W1":
        started = report["first_start"]
    elapsed = report["end"] - started
    if elapsed <= 0:
        raise RuntimeError("the worker finished before the run started: was Redis flushed?")
    sizes = PROBE.sizes + report["sizes"]
    if workload == "W1":
        value, unit = n / elapsed, "tasks/s"
    elif workload in ("W2", "W5"):
        value, unit = elapsed, "s"
    elif workload == "W3":
        value, unit = elapsed * 1000 / n, "ms/step"
    elif workload == "W4":
        value, unit = n / elapsed, "workflows/s"
    else:
        value, unit = elapsed * 1000 / expect, "ms/task"
    return {
        "system": system,
        "workload": workload,
        "n": n,
        "value": value,
        "unit": unit,
        "elapsed_s": elapsed,
        "tasks": expect,
        "messages": len(sizes),
        "largest_message_bytes": max(sizes),
        "median_message_bytes": statistics.median(sizes),
        "used_memory_growth_bytes": memory_after - memory_before,
        "net_input_bytes": net_after - net_before,
    }


def versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("dramatiq", "dramatiq-workflow", "celery")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", choices=SYSTEMS)
    parser.add_argument("--workload", choices=WORKLOADS)
    parser.add_argument("--url", help="the Redis server, e.g. redis://127.0.0.1:6399/0")
    parser.add_argument("--quick", action="store_true", help="small default sizes")
    parser.add_argument("--n", type=int, help="the workload's size (required for W6)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for a run")
    parser.add_argument("--versions", action="store_true", help="print peer versions and exit")
    args = parser.parse_args()
    if args.versions:
        print(json.dumps(versions()))
        return 0
    if not (args.system and args.workload and args.url):
        parser.error("--system, --workload and --url are required")
    if args.workload not in SUPPORTED[args.system]:
        parser.error(
            f"{args.system} does not run {args.workload}: {NOT_RUN[args.system, args.workload]}"
        )
    n = args.n or (QUICK_SIZES if args.quick else FULL_SIZES).get(args.workload)
    if n is None:
        parser.error(f"{args.workload} needs --n")
    print(json.dumps(run(args.system, args.workload, n, args.url, args.timeout)), flush=True)
    # Skip interpreter teardown, where Celery's AsyncResult finalisers fail noisily.
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
