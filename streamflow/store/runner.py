"""Loading the Lua scripts in ``lua/`` and running their calls.

Each script is loaded once and called by SHA (reloaded on NOSCRIPT). Every script is
prepended with the helpers of ``_lib.lua``, and the schema's names are written in when it
is loaded (``schema.lua_with_names``). Calls are built by the wrappers of
``streamflow.store.scripts``.

Calls on the App's own client are coalesced (group commit): while one thread's pipeline
is in flight, calls from other threads gather, and the next pipeline takes them all. A
lone call goes out at once; under load, workers make one round trip (two system calls,
one WAIT for replicated durability) for many scripts instead of one each.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import redis

from streamflow.model import schema
from streamflow.model.errors import DurabilityError
from streamflow.store import interrupts
from streamflow.store.cluster import Routes, is_cluster, master_clients
from streamflow.store.plan import Plan, checked, one, run
from streamflow.store.scripts import SCRIPTS, WRITES, Call, Reply
from streamflow.store.wire import Wire

_LUA = Path(__file__).with_name("lua")


class Scripts:
    """The scripts, registered on one client.

    Args:
        client: the connection (calls on it are coalesced across threads).
        replicas: with more than 0, every pipeline holding a write script ends with
            ``WAITAOF`` (or ``WAIT`` before Redis 7.2) for that many replicas, on the same
            connection.
        wait_timeout_ms: how long to wait for them.
    """

    def __init__(
        self, client: redis.Redis, *, replicas: int = 0, wait_timeout_ms: int = 1000
    ) -> None:
        self.replicas = replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._waitaof: bool | None = None
        self._client = client
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._flushing = False
        self._wire = Wire(client)
        """The coalesced pipelines' connection (one pipeline in flight at a time)."""
        self._routes = Routes(cast(Any, client)) if is_cluster(client) else None
        """On a cluster: a connection per master, each of its calls on its master's."""
        self._scripts = {
            name: client.register_script(script_source(name)) for name in sorted(SCRIPTS)
        }
        self.timed: Callable[[Sequence[Call], float, BaseException | None], None] | None = None
        """Told of each pipeline sent: its calls, how long its round trip took (s), and
        what it raised (metrics set it)."""

    def load_missing(self) -> int:
        """Load on every master the scripts it lacks (a restarted Redis has none until
        they are first run); returns how many were loaded.

        Raises:
            redis.RedisError: Redis is unreachable, or refuses scripts.
        """
        scripts = list(self._scripts.values())
        loaded = 0
        for master in master_clients(self._client):
            present = master.script_exists(*(script.sha for script in scripts))
            for script, there in zip(scripts, present, strict=True):
                if not there:
                    master.script_load(script.script)
                    loaded += 1
        return loaded

    def run(self, call: Call) -> Any:
        """Run one script call (coalesced with other threads' calls).

        Raises:
            DurabilityError: a write was not confirmed by enough replicas in time.
            redis.RedisError: the script failed, or Redis is unreachable.
        """
        (result,) = self._coalesced([call])
        if isinstance(result, Exception):
            raise result
        return result

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Run several calls in one round trip (a pipeline, not a transaction), shared
        with other threads' calls.

        Calls answered NOSCRIPT (the server lost its script cache) did not run; they are
        loaded and run again. Other errors are returned in place, not raised.

        Raises:
            DurabilityError: the writes were not confirmed by enough replicas in time.
            redis.RedisError: Redis is unreachable.
        """
        if not calls:
            return []
        return self._coalesced(calls)

    def _coalesced(self, calls: Sequence[Call]) -> list[Any]:
        """``_run`` on the App's client, sharing a pipeline with other threads' calls
        (shielded: a time limit never cuts a flush in two)."""
        if interrupts.armed():  # inside a time-limited body
            with interrupts.shielded():
                return self._shared(calls)
        return self._shared(calls)

    def _shared(self, calls: Sequence[Call]) -> list[Any]:
        slot = _Slot(calls)
        with self._lock:
            self._pending.append(slot)
            lead = not self._flushing
            self._flushing = True
        if not lead:
            slot.ready.wait()
            if not slot.lead:
                return slot.outcome()
        # This thread sends whatever has gathered (its own calls among them), then
        # hands the next pipeline to the first caller that arrived meanwhile.
        with self._lock:
            batch, self._pending = self._pending, []
        flat = [call for each in batch for call in each.calls]
        results: list[Any] = []
        error: BaseException | None = None
        timed = self.timed
        sent = time.perf_counter() if timed is not None else 0.0
        try:
            results = self._run(flat)
        except BaseException as exc:  # handed to every caller of the batch
            error = exc
        if timed is not None:
            timed(flat, time.perf_counter() - sent, error)
        with self._lock:
            if self._pending:
                self._pending[0].lead = True
                self._pending[0].ready.set()
            else:
                self._flushing = False
        start = 0
        for each in batch:
            each.results = results[start : start + len(each.calls)]
            each.error = error
            start += len(each.calls)
            if each is not slot:
                each.ready.set()
        return slot.outcome()

    def _run(self, calls: Sequence[Call]) -> list[Any]:
        routes = self._routes
        if routes is None:
            return run(self.plan(calls), self._wire.execute)
        # On a cluster, each master runs its calls as a plan of its own: a lost script
        # cache is loaded again on that master, and replicated writes wait there.
        return routes.spread(
            calls,
            lambda call: routes.node_of(call.keys[0] if call.keys else None),
            lambda node, group: run(self.plan(group), routes.wire(node).execute),
        )

    def plan(self, calls: Sequence[Call]) -> Plan[list[Any]]:
        """Running ``calls`` as a plan (``streamflow.store.plan``), for a face that sends
        its own commands: their replies in order, errors in place.

        Raises:
            DurabilityError: the writes were not confirmed by enough replicas in time.
        """
        wait = self.replicas > 0 and any(call.script in WRITES for call in calls)
        results = yield from self._pipeline(calls, wait)
        lost = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
        if lost:
            # The server lost its script cache (a restart, SCRIPT FLUSH): load and rerun
            # what did not run.
            for name in sorted({calls[i].script for i in lost}):
                yield from one(("SCRIPT", "LOAD", self._scripts[name].script))
            again = yield from self._pipeline([calls[i] for i in lost], wait)
            for i, result in zip(lost, again, strict=True):
                results[i] = result
        return results

    def close(self) -> None:
        """Give the coalesced pipelines' connection back to the client's pool."""
        self._wire.close()
        if self._routes is not None:
            self._routes.close()

    def _pipeline(self, calls: Sequence[Call], wait: bool) -> Plan[list[Any]]:
        """One pipeline; with ``wait``, the replicas' confirmation is asked for on the
        same connection (WAIT and WAITAOF count that connection's writes only)."""
        commands: list[tuple[Any, ...]] = [
            ("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args)
            for name, keys, args in calls
        ]
        if wait:
            if self._waitaof is None:
                # WAITAOF came with Redis 7.2 (Valkey reports a redis_version too).
                info = yield from one(("INFO", "server"))
                text = info if isinstance(info, bytes) else str(info).encode()
                found = re.search(rb"redis_version:(\d+)\.(\d+)", text)
                self._waitaof = found is not None and (int(found[1]), int(found[2])) >= (7, 2)
            if self._waitaof:  # on their disk too
                commands.append(("WAITAOF", 0, self.replicas, self.wait_timeout_ms))
            else:  # Redis before 7.2: in their memory
                commands.append(("WAIT", self.replicas, self.wait_timeout_ms))
        results = yield commands
        if wait:
            acks = checked(results.pop())
            confirmed = int(acks[1]) if isinstance(acks, list) else int(acks)
            if confirmed < self.replicas:
                raise DurabilityError(self.replicas, confirmed, self.wait_timeout_ms)
        return results


class _Slot:
    """One caller's calls waiting in a coalesced pipeline."""

    __slots__ = ("calls", "error", "lead", "ready", "results")

    def __init__(self, calls: Sequence[Call]) -> None:
        self.calls = calls
        self.ready = _Latch()
        self.lead = False
        """Woken to send the next pipeline, not with results."""
        self.results: list[Any] = []
        self.error: BaseException | None = None

    def outcome(self) -> list[Any]:
        if self.error is not None:
            raise self.error
        return self.results


class _Latch:
    """A one-shot ``threading.Event`` for one waiter, on a bare lock (no Condition)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        self._lock.release()

    def wait(self) -> None:
        self._lock.acquire()


def script_source(name: str) -> str:
    """The Lua source run for script ``name``: ``_lib.lua``, then ``<name>.lua``, with
    the schema's names written in."""
    replies = {f"REPLY_{code.name}": code.value for code in Reply}
    lib = (_LUA / "_lib.lua").read_text()
    return schema.lua_with_names(lib + "\n" + (_LUA / f"{name}.lua").read_text(), replies)
