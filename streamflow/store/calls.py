"""A script call as the runner takes it, and how flags are passed to Lua."""

from __future__ import annotations

from typing import Any, NamedTuple


class Call(NamedTuple):
    """One script call, its arguments in place."""

    script: str
    keys: list[str]
    args: list[Any]


def flag(value: bool) -> str:
    return "1" if value else "0"
