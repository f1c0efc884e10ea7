"""Loading and calling the Lua scripts in ``lua/``.

Each script is loaded once and called by SHA (redis-py's ``Script`` reloads it on
NOSCRIPT). ``_lib.lua`` holds helpers and is prepended to every script.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
from redis.commands.core import Script

from streamflow.errors import DurabilityError

_LUA = Path(__file__).with_name("lua")


class Reply(enum.Enum):
    """What a script answered."""

    OK = "OK"
    RUN = "RUN"
    DUP = "DUP"
    STALE = "STALE"
    ALREADY_DONE = "ALREADY_DONE"
    REBUILD = "REBUILD"
    CONFLICT = "CONFLICT"
    GONE = "GONE"
    TERMINAL = "TERMINAL"
    EXISTS = "EXISTS"
    RUNNING = "RUNNING"


def reply_code(raw: Any) -> Reply:
    """The reply code of a script's answer (its first element)."""
    code = raw[0]
    return Reply(code.decode() if isinstance(code, bytes) else code)


WRITES = frozenset({"submit", "start", "outcome", "apply", "archive", "rebuild", "expire"})
"""Scripts that write a workflow's state (``durability="replicated"`` waits after them)."""


class Scripts:
    """The scripts, registered on one client (usable with its pipelines too).

    Args:
        client: the connection.
        replicas: with more than 0, every write script is followed by ``WAITAOF`` (or
            ``WAIT`` where the server has no WAITAOF) for that many replicas.
        wait_timeout_ms: how long to wait for them.
    """

    def __init__(
        self, client: redis.Redis, *, replicas: int = 0, wait_timeout_ms: int = 1000
    ) -> None:
        self.replicas = replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._waitaof: bool | None = None
        self._client = client
        lib = (_LUA / "_lib.lua").read_text()
        self._scripts: dict[str, Script] = {}
        for path in sorted(_LUA.glob("*.lua")):
            if path.name.startswith("_"):
                continue
            self._scripts[path.stem] = client.register_script(lib + "\n" + path.read_text())

    def call(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[Any],
        client: redis.Redis | Any = None,
    ) -> Any:
        """Run script ``name`` (``client`` may be a pipeline; then it returns the pipeline).

        Raises:
            DurabilityError: a write was not confirmed by enough replicas in time.
        """
        result = self._scripts[name](keys=list(keys), args=list(args), client=client)
        if self.replicas and name in WRITES and not isinstance(client, redis.client.Pipeline):
            self._wait(client or self._client)
        return result

    def _wait(self, client: redis.Redis) -> None:
        """Block until enough replicas have the writes made so far on this connection
        pool's primary (WAITAOF: on their disk too, where the server supports it)."""
        confirmed: int
        if self._waitaof is not False:
            try:
                local_and_replicas: Any = client.execute_command(  # type: ignore[no-untyped-call]
                    "WAITAOF", 0, self.replicas, self.wait_timeout_ms
                )
                confirmed = int(local_and_replicas[1])
                self._waitaof = True
            except redis.ResponseError:
                self._waitaof = False  # Redis before 7.2: WAIT (in their memory)
        if self._waitaof is False:
            acks: Any = client.execute_command(  # type: ignore[no-untyped-call]
                "WAIT", self.replicas, self.wait_timeout_ms
            )
            confirmed = int(acks)
        if confirmed < self.replicas:
            raise DurabilityError(self.replicas, confirmed, self.wait_timeout_ms)

    def batch(
        self, client: redis.Redis, calls: Sequence[tuple[str, Sequence[str], Sequence[Any]]]
    ) -> list[Any]:
        """Run several scripts in one round trip (a pipeline, not a transaction).

        Calls answered NOSCRIPT (the server lost its script cache) did not run; they are
        loaded and run again. Other errors are returned in place, not raised.
        """
        if not calls:
            return []
        pipe = client.pipeline(transaction=False)
        for name, keys, args in calls:
            pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
        results: list[Any] = pipe.execute(raise_on_error=False)
        for i, result in enumerate(results):
            if isinstance(result, redis.exceptions.NoScriptError):
                name, keys, args = calls[i]
                results[i] = self._scripts[name](keys=list(keys), args=list(args), client=client)
        if self.replicas and any(name in WRITES for name, _, _ in calls):
            self._wait(client)
        return results
