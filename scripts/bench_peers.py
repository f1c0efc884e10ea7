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
file, then pushes one item to a Redis list that the runner blocks on.
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
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import redis

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
THREADS = 8

ENV_SYSTEM = "BENCH_PEERS_SYSTEM"
ENV_URL = "BENCH_PEERS_URL"
ENV_EXPECT = "BENCH_PEERS_EXPECT"
ENV_PROBE = "BENCH_PEERS_PROBE"
WARM_KEY = "bench-peers:warm"
DONE_KEY = "bench-peers:done"
READY_TIMEOUT_S = 60


class Probe:
    """Message sizes published by this process, and (in the worker) finished-task counts."""

    def __init__(self, url: str | None, expect: int, path: str | None) -> None:
        self.url = url
        self.expect = expect
        self.path = path
        self.sizes: list[int] = []
        self.first_start: float | None = None
        self.count = 0
        self._lock = threading.Lock()

    def started(self) -> None:
        if self.first_start is None:
            with self._lock:
                if self.first_start is None:
                    self.first_start = time.time()

    def finished(self) -> None:
        with self._lock:
            self.count += 1
            done = self.count == self.expect
        if done:
            end = time.time()
            assert self.path is not None and self.url is not None
            report = {"first_start": self.first_start, "end": end, "sizes": self.sizes}
            Path(self.path).write_text(json.dumps(report))
            redis.Redis.from_url(self.url).lpush(DONE_KEY, b"1")

    def failed(self, what: str) -> None:
        print(f"bench_peers: task failed: {what}", file=sys.stderr, flush=True)


PROBE = Probe(
    os.environ.get(ENV_URL), int(os.environ.get(ENV_EXPECT, "0")), os.environ.get(ENV_PROBE)
)


class Peer:
    """What the runner needs from one system: its worker command and its canvas."""

    worker_cmd: list[str]

    def send_noop(self) -> None:
        raise NotImplementedError

    def send_warmup(self) -> None:
        raise NotImplementedError

    def submit(self, workload: str, n: int) -> None:
        raise NotImplementedError


def build_canvas(
    workload: str,
    n: int,
    chain: Callable[..., Any],
    group: Callable[..., Any],
    task: Callable[[], Any],
) -> Any:
    """The workload's shape in the peer's own chain/group vocabulary."""
    if workload in ("W2", "W6"):
        return chain(task(), group(*(task() for _ in range(n))), task())
    if workload == "W3":
        return chain(*(task() for _ in range(n)))
    if workload == "W4":
        seed = chain(
            task(),
            group(chain(task(), task()), task(), chain(task(), group(task(), task()))),
            task(),
        )
        return seed
    if workload == "W5":
        return chain(group(*(task() for _ in range(n))), group(*(task() for _ in range(n))))
    raise ValueError(f"'workload' must be one of W2..W6 (got {workload!r})")


def expected_tasks(workload: str, n: int) -> int:
    return {"W1": n, "W2": n + 2, "W3": n, "W4": 8 * n, "W5": 2 * n, "W6": n + 2}[workload]


class DramatiqPeer(Peer):
    def __init__(self, url: str, *, workflow: bool) -> None:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker
        from dramatiq.encoder import JSONEncoder

        class SizeEncoder(JSONEncoder):
            """The default encoder; records the size of every message it encodes."""

            def encode(self, data: Any) -> bytes:
                out = super().encode(data)
                PROBE.sizes.append(len(out))
                return out

        class ProbeMiddleware(dramatiq.Middleware):
            def before_process_message(self, broker: Any, message: Any) -> None:
                if message.actor_name == "noop":
                    PROBE.started()

            def after_process_message(
                self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
            ) -> None:
                if message.actor_name != "noop":
                    return
                if exception is None:
                    PROBE.finished()
                else:
                    PROBE.failed(repr(exception))

        dramatiq.set_encoder(SizeEncoder())
        self.broker = RedisBroker(url=url)
        # after_* hooks run in reverse order: added first, the probe counts a task only
        # once dramatiq-workflow has enqueued what follows it.
        self.broker.add_middleware(ProbeMiddleware())
        if workflow:
            from dramatiq.rate_limits.backends import RedisBackend
            from dramatiq_workflow import WorkflowMiddleware

            self.broker.add_middleware(WorkflowMiddleware(RedisBackend(url=url)))
        dramatiq.set_broker(self.broker)
        client = redis.Redis.from_url(url)

        @dramatiq.actor(max_retries=0)
        def noop() -> None:
            pass

        @dramatiq.actor(max_retries=0)
        def warmup() -> None:
            client.lpush(WARM_KEY, b"1")

        self.noop, self.warmup = noop, warmup
        self.workflow = workflow
        self.worker_cmd = [
            str(Path(sys.executable).with_name("dramatiq")),
            "bench_peers:broker",
            "--processes", "1", "--threads", str(THREADS),
            # Last: --path takes any number of values.
            "--path", str(Path(__file__).resolve().parent),
        ]  # fmt: skip

    def send_noop(self) -> None:
        self.noop.send()

    def send_warmup(self) -> None:
        self.warmup.send()

    def submit(self, workload: str, n: int) -> None:
        from dramatiq_workflow import Chain, Group, Workflow

        count = n if workload == "W4" else 1
        for _ in range(count):
            canvas = build_canvas(workload, n, Chain, Group, self.noop.message)
            Workflow(canvas, broker=self.broker).run()


class CeleryPeer(Peer):
    def __init__(self, url: str) -> None:
        import kombu.transport.redis as kombu_redis
        from celery import Celery
        from celery.signals import task_postrun, task_prerun

        # kombu serialises each message with its module's dumps() inside Channel._put and
        # LPUSHes the result: record the size of exactly that string.
        publishing = threading.local()
        original_dumps, original_put = kombu_redis.dumps, kombu_redis.Channel._put

        def dumps(obj: Any) -> str:
            out: str = original_dumps(obj)
            if getattr(publishing, "active", False):
                PROBE.sizes.append(len(out.encode()))
            return out

        def put(channel: Any, queue: Any, message: Any, **kwargs: Any) -> Any:
            publishing.active = True
            try:
                return original_put(channel, queue, message, **kwargs)
            finally:
                publishing.active = False

        kombu_redis.dumps = dumps
        kombu_redis.Channel._put = put

        self.app = Celery("bench_peers", broker=url, backend=url)
        self.app.conf.update(
            broker_connection_retry_on_startup=True,
            worker_hijack_root_logger=False,
            task_serializer="json",
            result_serializer="json",
        )
        client = redis.Redis.from_url(url)

        @self.app.task(name="bench.noop")
        def noop() -> None:
            pass

        @self.app.task(name="bench.warmup")
        def warmup() -> None:
            client.lpush(WARM_KEY, b"1")

        def prerun(sender: Any = None, **kwargs: Any) -> None:
            if sender is not None and sender.name == "bench.noop":
                PROBE.started()

        def postrun(sender: Any = None, state: str | None = None, **kwargs: Any) -> None:
            if sender is None or sender.name != "bench.noop":
                return
            if state == "SUCCESS":
                PROBE.finished()
            else:
                PROBE.failed(f"state={state}")

        task_prerun.connect(prerun, weak=False)
        task_postrun.connect(postrun, weak=False)
        self.noop, self.warmup = noop, warmup
        self.worker_cmd = [
            str(Path(sys.executable).with_name("celery")),
            "-A", "bench_peers", "worker",
            "-P", "threads", "-c", str(THREADS),
            # Cluster chatter that plays no part in running tasks.
            "--without-mingle", "--without-gossip", "--without-heartbeat",
            "-l", "warning",
        ]  # fmt: skip

    def send_noop(self) -> None:
        self.noop.apply_async()

    def send_warmup(self) -> None:
        self.warmup.apply_async()

    def submit(self, workload: str, n: int) -> None:
        from celery import chain, group

        count = n if workload == "W4" else 1
        for _ in range(count):
            canvas = build_canvas(workload, n, chain, group, self.noop.si)
            canvas.apply_async()


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
