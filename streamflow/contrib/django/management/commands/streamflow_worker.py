"""``python manage.py streamflow_worker [options]``: ``streamflow worker`` for the App
of ``settings.STREAMFLOW``, after importing every installed application's ``tasks``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streamflow.contrib.common import run_worker
from streamflow.contrib.django import discover, get_app

SPEC = "streamflow.contrib.django:app"
_DJANGO_OPTIONS = ("--settings", "--pythonpath")
"""Options ``manage.py`` reads itself (already applied when the command runs)."""


class Command(BaseCommand):
    help = (
        "Run a streamflow worker for settings.STREAMFLOW's App, with the options of "
        "`streamflow worker` (manage.py streamflow_worker --help lists them)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "worker_args", nargs=argparse.REMAINDER, help="options of `streamflow worker`"
        )

    def run_from_argv(self, argv: list[str]) -> None:
        # Every word goes to streamflow's own parser, so the options (and --help) are
        # exactly `streamflow worker`'s.
        status = self.run(without_django_options(argv[2:]))
        if status:
            raise SystemExit(status)

    def handle(self, *args: Any, **options: Any) -> None:  # from call_command
        status = self.run(options.get("worker_args") or [])
        if status:
            raise CommandError(f"streamflow worker ended with status {status}")

    def run(self, argv: Sequence[str]) -> int:
        if not {"-h", "--help"} & set(argv):
            get_app()
            discover()
        return run_worker(SPEC, argv)


def without_django_options(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--settings`` and ``--pythonpath`` and their values."""
    kept: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _DJANGO_OPTIONS:
            skip = True
        elif not word.startswith(tuple(f"{option}=" for option in _DJANGO_OPTIONS)):
            kept.append(word)
    return kept
