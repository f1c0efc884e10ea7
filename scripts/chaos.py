"""Chaos runs.

Default: N seed-DAG workflows plus some wide groups on worker and projector processes
that are SIGKILLed and restarted every few seconds, with one Redis restart; then every
workflow's log is checked against the contract.

``--kill-workers``: 2,000 one-task workflows of 20 ms on one worker (8 slots, defaults),
run once uninterrupted and once with the worker SIGKILLed at 25 %, 50 % and 75 % done and
restarted at once; prints both times, how long each kill's held tasks took to finish,
what was lost and what ran twice.

``--bad-data``: bad data and lost Redis state injected while a load runs (400 workflows
unless ``--workflows`` says otherwise); see ``chaos_bad_data.py``.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("STREAMFLOW_LOG_LEVEL", "WARNING")

from streamflow import App, Chain, Group
from streamflow.model.definition import BarrierNode
from streamflow.model.events import BarrierReleased, TaskEnqueued
from streamflow.store.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent


def spawn(url: str, roles: list[str], logs: Path, name: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "streamflow.cli", "--log-level", "warning", "worker"]
    command += ["scripts.chaos_app:app", "--url", url, "--processes", "1"]
    command += ["--lease-ms", "1000", "--roles", *roles]
    log = (logs / f"{name}.log").open("ab")
    env = {**os.environ, "STREAMFLOW_REDIS_URL": url}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def kill_workers(tasks: int, kills: tuple[float, ...]) -> int:
    """The ``--kill-workers`` run; returns the exit status (1 if anything was lost)."""
    logs = Path(tempfile.mkdtemp(prefix="streamflow-chaos-"))

    def body(*a: Any) -> Any:
        raise AssertionError("runs in the chaos workers")

    with EmbeddedRedis(appendfsync="everysec") as server:
        figures: dict[str, float] = {}
        for run, shares in (("uninterrupted", ()), ("killed", kills)):
            # A fresh App on a flushed Redis (an App remembers the definitions it stored).
            app = App(server.url)
            app.client.flushall()
            brief = app.actor(body, actor_name="brief")
            queue = app.keys.queue(0, "default")
            handles = [brief.send(i) for i in range(tasks)]
            started = time.monotonic()
            worker = spawn_plain(server.url, logs, f"{run}0")
            held_by_kill: list[tuple[float, list[str]]] = []
            for n, share in enumerate(shares, 1):
                while app.client.hlen("runs:brief") < tasks * share:
                    time.sleep(0.01)
                worker.kill()
                worker.wait()
                held = app.client.xpending_range(queue, "workers", "-", "+", 10_000)
                held_ids = sorted(_workflows_of(app, queue, held))
                held_by_kill.append((time.monotonic(), held_ids))
                worker = spawn_plain(server.url, logs, f"{run}{n}")
            # Until everything is done: when each kill's held tasks were all done.
            active, done_at = app.keys.active(0), {}
            while app.client.scard(active):
                time.sleep(0.02)
                for n, (_, ids) in enumerate(held_by_kill, 1):
                    if n not in done_at and not any(app.client.smismember(active, ids)):
                        done_at[n] = time.monotonic()
            figures[run] = time.monotonic() - started
            results = [h.get_result(block=True, timeout=600) for h in handles]
            for n, (killed_at, ids) in enumerate(held_by_kill, 1):
                took = done_at.get(n, figures[run] + started) - killed_at
                held = f"{len(ids)} tasks held by dead workers"
                print(f"  kill {n}: {held}, all done {took:.1f} s later")
            worker.send_signal(signal.SIGTERM)
            worker.wait()
            runs = {int(k): int(v) for k, v in app.client.hgetall("runs:brief").items()}
            lost = tasks - sum(1 for i, r in enumerate(results) if r == i)
            twice = sum(count - 1 for count in runs.values())
            print(f"{run:<14} {figures[run]:6.1f} s   lost {lost}   ran twice {twice}", flush=True)
            app.close()
            if lost:
                return 1
    print(f"killed / uninterrupted  {figures['killed'] / figures['uninterrupted']:.2f}x")
    return 0


def _workflows_of(app: App, queue: str, pending: list[Any]) -> set[str]:
    from streamflow.model.messages import decode_task_message

    out = set()
    for entry in pending:
        for _, fields in app.client.xrange(queue, entry["message_id"], entry["message_id"]):
            out.add(decode_task_message(fields[b"m"])[0])
    return out


def spawn_plain(url: str, logs: Path, name: str) -> subprocess.Popen[bytes]:
    """A worker at its defaults (8 slots, 30 s lease), every role."""
    command = [sys.executable, "-m", "streamflow.cli", "--log-level", "warning", "worker"]
    command += ["scripts.chaos_app:app", "--url", url, "--processes", "1"]
    log = (logs / f"{name}.log").open("ab")
    env = {**os.environ, "STREAMFLOW_REDIS_URL": url}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--workflows", type=int, help="seed DAG workflows (1000), or the --bad-data load (400)"
    )
    parser.add_argument("--wide", type=int, default=5, help="Chain(Group(200), Group(200))s")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--projectors", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--kill-workers", action="store_true", help="the dead-worker run (see above)"
    )
    parser.add_argument("--tasks", type=int, default=2000, help="with --kill-workers")
    parser.add_argument(
        "--bad-data", action="store_true", help="bad data and lost state (chaos_bad_data.py)"
    )
    args = parser.parse_args()
    workflows = args.workflows or 1000
    if args.kill_workers:
        return kill_workers(args.tasks, (0.25, 0.5, 0.75))
    if args.bad_data:
        from chaos_bad_data import bad_data  # beside this file

        return bad_data(args.workflows or 400, min(args.timeout, 300.0))
    logs = Path(tempfile.mkdtemp(prefix="streamflow-chaos-"))
    started = time.monotonic()
    with EmbeddedRedis(directory=str(logs / "redis"), appendfsync="always") as server:
        app = App(server.url)

        def body(*a: Any) -> Any:
            raise AssertionError("runs in the chaos workers")

        t = app.actor(body, actor_name="tag").message
        seed = Chain(
            t("t1"),
            Group(Chain(t("t2"), t("t5")), t("t3"), Chain(t("t4"), Group(t("t6"), t("t7")))),
            t("t8"),
        )
        wide = Chain(
            Group(*(t(f"a{i}") for i in range(200))), Group(*(t(f"b{i}") for i in range(200)))
        )
        handles = [app.submit(seed) for _ in range(workflows)]
        handles += [app.submit(wide) for _ in range(args.wide)]
        expected = {h.id: "t8" for h in handles[:workflows]}
        expected.update({h.id: [f"b{i}" for i in range(200)] for h in handles[workflows:]})
        print(f"submitted {len(handles)} workflows; logs in {logs}", flush=True)

        roles = {f"worker{i}": ["tasks", "timer"] for i in range(args.workers)}
        roles.update({f"projector{i}": ["recovery", "timer"] for i in range(args.projectors)})
        procs = {name: spawn(server.url, r, logs, name) for name, r in roles.items()}
        kills = redis_restarts = 0
        next_kill = time.monotonic() + args.kill_every
        active_key = app.keys.active(0)
        while app.client.scard(active_key) and time.monotonic() - started < args.timeout:
            time.sleep(0.2)
            if time.monotonic() < next_kill:
                continue
            next_kill = time.monotonic() + args.kill_every
            victim = random.choice(sorted(procs))
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            procs[victim] = spawn(server.url, roles[victim], logs, victim)
            kills += 1
            if kills == 3:
                server.restart(hard=True, down_s=1.0)
                redis_restarts += 1
            remaining = app.client.scard(active_key)
            print(f"  killed {victim}; {remaining} workflows active", flush=True)
        for process in procs.values():
            process.kill()
            process.wait()

        completed = wrong = double_releases = duplicate_enqueues = 0
        for handle in handles:
            status = handle.status()
            if status.status != "completed":
                continue
            completed += 1
            if handle.get_result() != expected[handle.id]:
                wrong += 1
            history = handle.history()
            definition = app.definitions.get(history[0].event.def_hash, handle.id)  # type: ignore[attr-defined]
            releases = collections.Counter(
                e.event.barrier for e in history if isinstance(e.event, BarrierReleased)
            )
            enqueues = collections.Counter(
                (e.event.node, e.event.attempt)
                for e in history
                if isinstance(e.event, TaskEnqueued)
            )
            barriers = [n.id for n in definition.nodes if isinstance(n, BarrierNode)]
            double_releases += sum(1 for b in barriers if releases[b] > 1)
            duplicate_enqueues += sum(1 for count in enqueues.values() if count > 1)
        app.close()
    print(f"workflows completed      {completed} / {len(handles)}")
    print(f"wrong results            {wrong}")
    print(f"barrier double releases  {double_releases}")
    print(f"duplicate enqueues       {duplicate_enqueues}")
    print(f"lost (not completed)     {len(handles) - completed}")
    print(f"processes killed         {kills}; Redis restarts {redis_restarts}")
    print(f"wall time                {time.monotonic() - started:.1f} s")
    ok = completed == len(handles) and not (wrong or double_releases or duplicate_enqueues)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
