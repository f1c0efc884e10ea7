"""The peers themselves, for scripts/bench_peers.py: dramatiq (plain, or with
dramatiq-workflow's middleware) and Celery, each a ``Peer`` holding its broker or app,
its ``noop`` and ``warmup`` actors and its worker's command line; ``build_canvas``, a
workload's shape in a peer's own chain/group vocabulary; and the probe (``PROBE``, made
from the BENCH_PEERS_* variables when this module is first imported). The runner loads
it, and so does the worker through bench_peers (its module), both in .venv-peers;
scripts/bench.py loads it too, through bench_peers' tables, in the project's venv. So it
imports only the standard library and redis at the top, and each peer's own packages only
when that peer is made.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

THREADS = 8

ENV_SYSTEM = "BENCH_PEERS_SYSTEM"
ENV_URL = "BENCH_PEERS_URL"
ENV_EXPECT = "BENCH_PEERS_EXPECT"
ENV_PROBE = "BENCH_PEERS_PROBE"
WARM_KEY = "bench-peers:warm"
DONE_KEY = "bench-peers:done"


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
