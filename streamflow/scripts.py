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


class Scripts:
    """The scripts, registered on one client (usable with its pipelines too)."""

    def __init__(self, client: redis.Redis) -> None:
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
        """Run script ``name`` (``client`` may be a pipeline; then it returns the pipeline)."""
        return self._scripts[name](keys=list(keys), args=list(args), client=client)

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
                results[i] = self.call(name, keys, args, client=client)
        return results
