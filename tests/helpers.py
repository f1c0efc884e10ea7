"""Helpers shared by the integration tests: reading logs and checking the contract."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamflow import App
from streamflow.history.audit import audit, replay
from streamflow.model.definition import NONE, BarrierNode, Definition, TaskNode
from streamflow.model.events import (
    BarrierReleased,
    Entry,
    TaskEnqueued,
    TaskStarted,
    TaskSucceeded,
    WorkflowSubmitted,
)
from streamflow.runtime.worker import Worker
from streamflow.store import scripts
from streamflow.store.cluster import is_cluster
from streamflow.store.scripts import Call


def masters(r: Any) -> list[Any]:
    """A plain client of each master of ``r``'s Redis (``r`` itself for one Redis)."""
    if is_cluster(r):
        return [r.get_redis_connection(node) for node in r.get_primaries()]
    return [r]


def master_of(r: Any, key: str) -> Any:
    """A plain client of the master that holds ``key`` (``r`` itself for one Redis)."""
    return r.get_redis_connection(r.get_node_from_key(key)) if is_cluster(r) else r


def command_calls(r: Any) -> dict[str, int]:
    """Calls per command so far (INFO commandstats), summed over every master."""
    calls: collections.Counter[str] = collections.Counter()
    for client in masters(r):
        for name, stat in client.info("commandstats").items():
            calls[name.removeprefix("cmdstat_")] += int(stat["calls"])
    return dict(calls)


def pattern_subscriptions(r: Any) -> int:
    """Pattern subscriptions on every master (PUBSUB NUMPAT summed)."""
    return sum(int(client.pubsub_numpat()) for client in masters(r))


def active_workflows(app: App, r: Any) -> int:
    """Workflows not ended, on every shard."""
    return sum(int(r.scard(app.keys.active(shard))) for shard in range(app.shards))


def run_worker(app: App, **options: Any) -> Worker:
    """A worker of ``app``, started (4 task threads unless ``concurrency`` says)."""
    return app.worker(concurrency=options.pop("concurrency", 4), **options).start()


def start_call(
    app: App,
    workflow_id: str,
    *,
    queue: str | None = None,
    msg_id: str = "1-0",
    started: bytes = b"x",
    node: int = 0,
    attempt: int = 1,
) -> Call:
    """A start script call for a task message of ``workflow_id`` (by default on node 0's
    first attempt, from the default queue, with a placeholder TaskStarted)."""
    return scripts.start(
        wf=app.keys.workflow(workflow_id),
        queue=queue or app.keys.queue(0, "default"),
        node=node,
        attempt=attempt,
        msg_id=msg_id,
        started=started,
        finalizer=False,
        catch_up_after="",
        catch_up_count=0,
        takeover=started,
    )


def definition_of(app: App, history: list[Entry]) -> Definition:
    submitted = history[0].event
    assert isinstance(submitted, WorkflowSubmitted)
    return app.definitions.find(submitted.def_hash, range(app.shards))


def check_contract(definition: Definition, history: list[Entry]) -> None:
    """Contract items 1 and 2 (DESIGN §1), from the log alone."""
    assert [e.seq for e in history] == list(range(1, len(history) + 1)), "seqs not dense"
    succeeded_at: dict[int, int] = {}
    enqueues: collections.Counter[tuple[int, int]] = collections.Counter()
    releases: collections.Counter[int] = collections.Counter()
    for entry in history:
        event = entry.event
        if isinstance(event, TaskSucceeded):
            succeeded_at.setdefault(event.node, entry.seq)
        elif isinstance(event, TaskEnqueued):
            enqueues[(event.node, event.attempt)] += 1
        elif isinstance(event, BarrierReleased):
            releases[event.barrier] += 1
        elif isinstance(event, TaskStarted):
            task = definition.nodes[event.node]
            assert isinstance(task, TaskNode)
            if task.pred != NONE:
                barrier = definition.nodes[task.pred]
                assert isinstance(barrier, BarrierNode)
                for source in barrier.sources:
                    assert succeeded_at.get(source, 10**12) < entry.seq, (
                        f"node {event.node} started at seq {entry.seq} before its "
                        f"predecessor {source} succeeded"
                    )
    assert all(count == 1 for count in enqueues.values()), f"double enqueue: {enqueues}"
    barriers = [n.id for n in definition.nodes if isinstance(n, BarrierNode)]
    assert all(releases[b] == 1 for b in barriers), f"releases: {dict(releases)}"


def remote_actor(app: App, name: str) -> Any:
    """A stand-in for an actor of tests/sample_app.py: submitted from the test, its body
    run by worker processes only."""

    def body(*args: Any) -> Any:
        raise AssertionError("runs in the worker processes only")

    return app.actor(body, actor_name=name)


def hold(client: Any, key: str, seconds: float) -> bool:
    """Wait until a test pushes to the list ``key`` (True), or ``seconds`` pass (False).

    Blocks in slices of a second: redis-py 8 gives a client a 5 s socket timeout by
    default, so one long BLPOP would fail with a TimeoutError there.
    """
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if client.blpop([key], timeout=min(1.0, left)):
            return True
    return False


def audited(app: App, workflow_id: str) -> list[Entry]:
    """A workflow's history, checked to audit clean and to replay."""
    history = app.history(workflow_id)
    definition = definition_of(app, history)
    violations, divergences = audit(history, definition), replay(history, definition)
    assert violations == [], violations
    assert divergences == [], divergences
    return history


def runs(r: Any, tag: str) -> int:
    """How many times the sample app's bodies counted ``tag`` (``runs:<tag>``)."""
    return int(r.get(f"runs:{tag}") or 0)


def events_of(history: list[Entry], kind: type[Any]) -> list[Any]:
    return [e.event for e in history if isinstance(e.event, kind)]


def close_apps(*namespaces: Mapping[str, Any]) -> None:
    """Close the Apps an example left in its namespaces (each holds a connection pool
    and, once it waited for a result, a subscription)."""
    apps = {id(v): v for space in namespaces for v in space.values() if isinstance(v, App)}
    for app in apps.values():
        app.close()


CLI = [sys.executable, "-m", "streamflow.cli", "--log-level", "warning"]
ROOT = Path(__file__).resolve().parent.parent


def worker_process(
    app: str, url: str, log: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``streamflow worker <app> --url url <args>`` in a process of its own, its
    STREAMFLOW_REDIS_URL set (and ``env``), its stderr in ``log``: one worker process
    (``--processes 1``) unless ``args`` ask for more."""
    environment = {**os.environ, "STREAMFLOW_REDIS_URL": url, **(env or {})}
    one = [] if "--processes" in args else ["--processes", "1"]
    command = [*CLI, "worker", app, "--url", url, *one, *args]
    return subprocess.Popen(command, cwd=ROOT, env=environment, stderr=log.open("wb"))


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """Stop a worker process gracefully (SIGTERM); it must exit 0."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0, log.read_text()


def cli(url: str, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """``streamflow <args> --url url`` in a process of its own, which must exit ``code``."""
    done = subprocess.run([*CLI, *args, "--url", url], capture_output=True, text=True, timeout=60)
    assert done.returncode == code, (done.stdout, done.stderr)
    return done


def watched(url: str, *args: str, draws: int = 3) -> list[str]:
    """``streamflow <args> --watch 0.1``: its first ``draws`` lines; then SIGINT, which
    must end it with exit status 130 and nothing on stderr (no traceback)."""
    command = [*CLI, *args, "--watch", "0.1", "--url", url]
    watching = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert watching.stdout is not None
    lines = [watching.stdout.readline() for _ in range(draws)]
    watching.send_signal(signal.SIGINT)
    _, err = watching.communicate(timeout=30)
    assert watching.returncode == 130 and err == "", (watching.returncode, err)
    return lines
