"""``scripts/chaos --bad-data``: bad data and lost Redis state, injected while a load runs.

A load of workflows (chains, groups, delays, retries) runs on two worker processes.
While it is submitted, every kind of poison goes in, one after the other: queue entries
that are not ours or lack their field, a task message naming a malformed workflow id, a
wake-up that is not ours, an unreadable expiry entry; live workflows whose log gets a
corrupt entry or an event of an unknown type, whose definition is deleted or truncated;
and lost state: a queue's consumer group destroyed, the shard's definitions deleted.

Prints the load's workflows completed, the poisons dead-lettered, the poisoned workflows
ended as unreadable, and the stalls (load workflows not finished in time, messages still
held at the end, workers that died): they must be 0. Exit status 1 otherwise.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamflow import App, Chain, Group, WithDelay, WorkflowHandle
from streamflow.model import codec, schema
from streamflow.model.messages import shard_of
from streamflow.runtime.projector import UNREADABLE
from streamflow.store.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
_WORKFLOW_ID = re.compile(r"\b\d+-[0-9a-f]{24}\b")


def _worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "streamflow.cli", "--log-level", "warning", "worker"]
    command += ["scripts.chaos_app:app", "--url", url, "--processes", "1"]
    env = {**os.environ, "STREAMFLOW_REDIS_URL": url}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=log.open("ab")
    )


def _append_raw(app: App, workflow_id: str, payload: bytes) -> None:
    """An entry the log's index counts, whatever its bytes."""
    client, idx = app.client, app.keys.idx(workflow_id)
    length = int(client.hget(idx, schema.LENGTH) or 0) + 1
    client.xadd(app.keys.log(workflow_id), {schema.EVENT_FIELD: payload, schema.SEQ_FIELD: length})
    client.hset(idx, schema.LENGTH, length)


class Poisons:
    """The poisons, each a step that injects one; ``victims`` are the live workflows the
    ones in a log or a definition were put in (each must end as unreadable)."""

    def __init__(self, app: App, tag: Callable[..., Any]) -> None:
        self.app, self.tag = app, tag
        self.victims: list[WorkflowHandle] = []
        self.done: list[str] = []

    def steps(self) -> list[Callable[[], str]]:
        return [
            self.garbage_entry,
            self.entry_without_its_field,
            self.malformed_workflow_id,
            self.corrupt_log_entry,
            self.unknown_event_type,
            self.garbage_wake_up,
            self.deleted_definition,
            self.truncated_definition,
            self.unreadable_expiry_entry,
            self.destroyed_consumer_group,
            self.deleted_definitions,
        ]

    @property
    def _queue(self) -> str:
        return self.app.keys.queue(0, "default")

    def _victim(self, size: int) -> WorkflowHandle:
        """A live workflow of a shape of its own (its first step waits two seconds)."""
        steps = [self.tag(f"v{size}.{i}") for i in range(size)]
        handle = self.app.submit(Chain(WithDelay(self.tag("first"), 2.0), *steps))
        self.victims.append(handle)
        return handle

    def _definition_key(self, handle: WorkflowHandle) -> str:
        definition = handle.snapshot().definition
        return self.app.keys.definition(shard_of(handle.id), definition.hash)

    def garbage_entry(self) -> str:
        self.app.client.xadd(self._queue, {"m": b"\xff not ours"})
        return "a queue entry that is not ours"

    def entry_without_its_field(self) -> str:
        self.app.client.xadd(self._queue, {"x": b"no m field"})
        return "a queue entry without its field"

    def malformed_workflow_id(self) -> str:
        self.app.client.xadd(self._queue, {"m": codec.encode(["evil{1}", 0, 1, bytes(16)])})
        return "a task message naming a malformed workflow id"

    def corrupt_log_entry(self) -> str:
        _append_raw(self.app, self._victim(3).id, b"\x10\xff\xfe not an event")
        return "a corrupt entry in a live log"

    def unknown_event_type(self) -> str:
        _append_raw(self.app, self._victim(4).id, codec.encode([99, 0, "from the future"]))
        return "an event of an unknown type in a live log"

    def garbage_wake_up(self) -> str:
        self.app.client.xadd(self.app.keys.wake(0), {"m": b"\xff not ours"})
        return "a wake-up that is not ours"

    def deleted_definition(self) -> str:
        self.app.client.delete(self._definition_key(self._victim(5)))
        return "a live workflow's definition deleted"

    def truncated_definition(self) -> str:
        self.app.client.set(self._definition_key(self._victim(6)), b"\x10\xff truncated")
        return "a live workflow's definition truncated"

    def unreadable_expiry_entry(self) -> str:
        self.app.client.zadd(self.app.keys.expiry(0), {"not an expiry entry": 0})
        return "an unreadable expiry entry"

    def destroyed_consumer_group(self) -> str:
        self.app.client.xgroup_destroy(self._queue, schema.WORKER_GROUP)
        return "the queue's consumer group destroyed"

    def deleted_definitions(self) -> str:
        client, keys = self.app.client, self.app.keys
        lost = [*client.scan_iter(match=keys.definition(0, "*"), count=1000)]
        client.delete(keys.definitions(0), *lost)
        return "the shard's definitions deleted (as by a failover to an empty replica)"


def bad_data(workflows: int, timeout_s: float) -> int:
    """The ``--bad-data`` run; returns the exit status."""
    logs = Path(tempfile.mkdtemp(prefix="streamflow-chaos-"))

    def body(*a: Any) -> Any:
        raise AssertionError("runs in the chaos workers")

    with EmbeddedRedis() as server:
        app = App(server.url)
        tag = app.actor(body, actor_name="tag").message
        flaky = app.actor(body, actor_name="flaky", max_retries=3, min_backoff=0.05).message
        shapes: list[Callable[[int], Any]] = [
            lambda i: Chain(tag(f"a{i}"), Group(tag("b"), tag("c")), tag(f"d{i}")),
            lambda i: WithDelay(tag(f"d{i}"), 0.3),
            lambda i: Chain(flaky(f"f{i}"), tag(f"d{i}")),
            lambda i: Group(tag("a"), tag("b"), tag(f"d{i}")),
        ]
        expected: dict[str, Any] = {}
        handles: list[WorkflowHandle] = []
        poisons = Poisons(app, tag)
        workers = [_worker(server.url, logs / f"worker{n}.log") for n in range(2)]
        started = time.monotonic()
        steps = poisons.steps()
        batches = len(steps) + 2  # a poison after each batch, then two clean ones
        for batch in range(batches):
            for i in range(batch * workflows // batches, (batch + 1) * workflows // batches):
                handle = app.submit(shapes[i % len(shapes)](i))
                handles.append(handle)
                expected[handle.id] = f"d{i}"  # a group's: its last member's
            if batch < len(steps):
                poisons.done.append(steps[batch]())
            time.sleep(0.25)
        print(f"submitted {len(handles)} workflows; injected {len(poisons.done)} poisons:")
        for what in poisons.done:
            print(f"  {what}")

        deadline = started + timeout_s
        finished: dict[str, Any] = {}
        for handle in handles:
            try:
                left = max(0.1, deadline - time.monotonic())
                finished[handle.id] = handle.get_result(block=True, timeout=left)
            except Exception as exc:  # a stall or a wrong ending: counted below
                finished[handle.id] = exc
        took = time.monotonic() - started
        completed = sum(1 for h in handles if _ok(finished[h.id], expected[h.id]))
        unreadable = 0
        for victim in poisons.victims:
            left = max(0.1, deadline - time.monotonic())
            if _ended_unreadable(victim, left):
                unreadable += 1
        held = app.client.xpending(app.keys.queue(0, "default"), schema.WORKER_GROUP)["pending"]
        alive = sum(1 for worker in workers if worker.poll() is None)
        reasons = collections.Counter(
            _WORKFLOW_ID.sub("<id>", letter.reason.split(":")[0])
            for letter in app.dead_letters.list(limit=1000)
        )
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        app.close()

    said = sum(log.read_text().count("redis_state_lost") for log in logs.glob("*.log"))
    stalls = (len(handles) - completed) + held + (len(workers) - alive)
    print(f"load completed           {completed} / {len(handles)} in {took:.1f} s")
    print(f"poisoned workflows ended {unreadable} / {len(poisons.victims)} as {UNREADABLE}")
    print(f"dead letters             {sum(reasons.values())}")
    for reason, count in sorted(reasons.items()):
        print(f"  {count} {reason}")
    print(f"lost state said          {said}x in the workers' logs (redis_state_lost)")
    print(f"stalls                   {stalls}")
    print(f"  (load not completed {len(handles) - completed}, messages still held {held},")
    print(f"   workers that died {len(workers) - alive}; logs in {logs})")
    ok = not stalls and unreadable == len(poisons.victims)
    return 0 if ok else 1


def _ok(result: Any, expected: Any) -> bool:
    if isinstance(result, Exception):
        return False
    return bool(result == expected or (isinstance(result, list) and result[-1] == expected))


def _ended_unreadable(handle: WorkflowHandle, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = handle.status()
        if status.done:
            return status.status == "failed" and (status.error or {}).get("type") == UNREADABLE
        time.sleep(0.1)
    return False
