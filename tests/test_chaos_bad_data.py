"""``scripts/chaos --bad-data`` runs clean: every poison dead-lettered or ended, no stall
(a short load, on the embedded server the script starts itself)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def test_bad_data_chaos_completes_the_load_and_stalls_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/chaos.py", "--bad-data", "--workflows", "120"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout, done.stderr[-3000:])

    def line(start: str) -> list[str]:
        (found,) = [x for x in done.stdout.splitlines() if x.startswith(start)]
        return found[len(start) :].split()

    assert line("load completed")[:3] == ["120", "/", "120"]
    assert line("poisoned workflows ended")[:3] == ["4", "/", "4"]
    assert line("stalls") == ["0"]
    assert "Traceback" not in done.stderr
