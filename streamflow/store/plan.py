"""What to send to Redis and what to make of the replies, apart from sending it: one
implementation behind the client's two faces, synchronous and asyncio.

A plan is a generator: it yields a list of commands (tuples of a command's words),
receives their raw replies in order (an error reply in place, as its
``redis.ResponseError``), and returns its result. It does no I/O itself. ``run`` sends
its commands with a thread's executor (``Store.execute``: a held ``Wire``, and the
scripts' coalesced pipelines), ``run_async`` with an event loop's (``AsyncStore``): each
list in one round trip. Plans compose with ``yield from``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, TypeVar

import redis

T = TypeVar("T")
Command = tuple[Any, ...]
Plan = Generator[Sequence[Command], list[Any], T]
"""Yields commands to send, receives their replies, returns a ``T``."""


def run(plan: Plan[T], execute: Callable[[Sequence[Command]], list[Any]]) -> T:
    """Carry out ``plan``, each of its lists of commands sent by ``execute``."""
    try:
        commands = next(plan)
        while True:
            commands = plan.send(execute(commands))
    except StopIteration as done:
        result: T = done.value
        return result


async def run_async(
    plan: Plan[T], execute: Callable[[Sequence[Command]], Awaitable[list[Any]]]
) -> T:
    """``run``, each list of commands awaited."""
    try:
        commands = next(plan)
        while True:
            commands = plan.send(await execute(commands))
    except StopIteration as done:
        result: T = done.value
        return result


def pipelined(client: redis.Redis) -> Callable[[Sequence[Command]], list[Any]]:
    """An executor for ``run`` on a pipeline of ``client``, for callers that hold no
    ``Wire`` (replies come through redis-py's response callbacks)."""

    def execute(commands: Sequence[Command]) -> list[Any]:
        pipe: Any = client.pipeline(transaction=False)  # execute_command is untyped
        for command in commands:
            pipe.execute_command(*command)
        return list(pipe.execute(raise_on_error=False))

    return execute


def one(command: Command) -> Plan[Any]:
    """One command's reply.

    Raises:
        redis.ResponseError: the command's error reply.
    """
    (reply,) = yield [command]
    return checked(reply)


def checked(reply: T) -> T:
    """``reply``, unless it is an error reply: then it is raised."""
    if isinstance(reply, redis.ResponseError):
        raise reply
    return reply


def clock_ms(reply: Any) -> int:
    """Milliseconds of a TIME reply (seconds and microseconds, as bytes or ints)."""
    seconds, micros = checked(reply)
    return int(seconds) * 1000 + int(micros) // 1000
