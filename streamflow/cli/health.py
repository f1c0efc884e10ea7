"""``streamflow health``: a probe for a container. Exit status 0 when Redis answers, every
master has the scripts (those missing, as after a restart, are loaded: what fails then
is Redis refusing them), and, with ``--worker``, that worker beat within ``--max-age``
seconds by the Redis clock; else 1. Each check is a line on stdout. Named by its host,
the workers of a supervisor (``--processes``) must all beat, save those gone from this
host (died, and replaced by the supervisor)."""

from __future__ import annotations

import argparse
import os
import socket

import redis

from streamflow.api.app import App
from streamflow.cli.common import connect

MAX_AGE_S = 10.0
"""A worker beats twice a second; one silent this long is not healthy."""


def cmd_health(args: argparse.Namespace) -> int:
    app = connect(args)
    try:
        app.client.ping()
        loaded = app.store.scripts.load_missing()
    except redis.RedisError as exc:
        print(f"redis    down: {exc}")
        return 1
    print("redis    ok")
    print(f"scripts  ok ({loaded} loaded now)")
    if args.worker is None:
        return 0
    beats = last_beats(app, args.worker)
    if not beats:
        print(f"worker   no heartbeat from {args.worker!r}")
        return 1
    fresh, counted = True, 0
    for name, age_s in sorted(beats.items()):
        if gone_from_here(name):
            # A worker process that died and was replaced (``--processes``): its beats
            # linger, but it is no one's to be healthy.
            print(f"worker   {name} gone (no such process here): not counted")
            continue
        ok = age_s <= args.max_age
        fresh &= ok
        counted += 1
        print(f"worker   {name} beat {age_s:.1f} s ago{'' if ok else ': too long'}")
    return 0 if fresh and counted else 1


def gone_from_here(consumer: str) -> bool:
    """Whether ``consumer`` (named ``host:pid:suffix``) ran on this host, in a process that
    no longer exists (the probe runs beside its workers, as a container's does)."""
    host, _, rest = consumer.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, another user's
        return False
    return False


def last_beats(app: App, worker: str) -> dict[str, float]:
    """Seconds since the last beat of each consumer named ``worker``, or whose name
    starts with ``worker:`` (a host, or ``host:pid``), by the Redis clock."""
    found: dict[str, float] = {}
    for shard in range(app.shards):
        now_ms = app.store.now_ms(shard)
        for raw, score in app.client.zrange(app.keys.beats(shard), 0, -1, withscores=True):
            name = raw.decode() if isinstance(raw, bytes) else raw
            if name == worker or name.startswith(f"{worker}:"):
                age_s = max(0.0, (now_ms - score) / 1000)
                found[name] = min(found.get(name, age_s), age_s)
    return found
