"""``scripts/demo``, the README's first command: the demo runs on the embedded server,
prints its results, and says nothing but that it started one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_runs_on_the_embedded_server_and_ends_quietly() -> None:
    env = {k: v for k, v in os.environ.items() if k != "STREAMFLOW_REDIS_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "streamflow.cli", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "'t8 got [7, 30, [16, -4]]'" in output
    assert "499500" in output
    warnings = [line for line in output.splitlines() if "[warning" in line]
    assert len(warnings) == 1 and "embedded_redis_started" in warnings[0], warnings
