"""What the framework integrations share: an App built from a framework's settings,
and the ``streamflow worker`` command run for it."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from streamflow.api.app import App
from streamflow.cli.main import main

APP_OPTIONS = tuple(inspect.signature(App).parameters)
"""The keyword arguments of ``App`` (``url``, ``prefix``, ``shards``, ...)."""
_TOP_LEVEL = {"--log-level": True, "--traceback": False}
"""Options of the ``streamflow`` command itself (not of ``worker``): whether each takes
a value."""


def app_options(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``App`` keyword arguments from settings named ``<prefix><NAME>`` in capitals
    (``URL`` or ``STREAMFLOW_URL`` for ``url``).

    Raises:
        ValueError: a setting names no ``App`` argument.
    """
    options: dict[str, Any] = {}
    for key, value in settings.items():
        name = key.removeprefix(prefix).lower()
        if not key.startswith(prefix) or name not in APP_OPTIONS or key != key.upper():
            expected = ", ".join(f"{prefix}{option.upper()}" for option in APP_OPTIONS)
            raise ValueError(f"unknown streamflow setting {key!r}: expected one of {expected}")
        options[name] = value
    return options


def run_worker(spec: str, argv: Sequence[str]) -> int:
    """Run ``streamflow worker <spec> <argv>`` in this process (the same options, the
    same one-line errors); returns its exit status. ``--log-level`` and ``--traceback``,
    which belong to ``streamflow`` itself, may stand anywhere in ``argv``.

    One worker process: the framework set its App up in this process, which the
    processes ``--processes`` starts would not do (run one command per process).

    Raises:
        SystemExit: ``--processes`` other than 1.
    """
    top: list[str] = []
    rest: list[str] = []
    words = iter(argv)
    for word in words:
        option, equals, _ = word.partition("=")
        if option in _TOP_LEVEL:
            top.append(word)
            if _TOP_LEVEL[option] and not equals:
                top.append(next(words, ""))
        else:
            rest.append(word)
    return main([*top, "worker", spec, *_one_process(rest)])


def _one_process(argv: list[str]) -> list[str]:
    for i, word in enumerate(argv):
        option, equals, value = word.partition("=")
        if option == "--processes":
            given = value if equals else (argv[i + 1] if i + 1 < len(argv) else "")
            if given.strip() != "1":
                raise SystemExit(
                    "a framework's worker command runs one worker process (it sets the App "
                    f"up in its own process): run one per process (got --processes {given})"
                )
            return argv
    return [*argv, "--processes", "1"]
