"""``scripts/demo``, the README's first command: the demo runs on the embedded server,
shows each workflow's progress as it runs, prints its results, and says nothing but that
it started one."""

from __future__ import annotations

import os
import re
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
        timeout=120,
    )
    # Bytes, decoded as they are: text mode would read each carriage return as a newline.
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, stderr
    output = stdout + stderr
    assert "'t8 got [7, 30, [16, -4]]'" in output
    assert "499500" in output
    warnings = [line for line in output.splitlines() if "[warning" in line]
    assert len(warnings) == 1 and "embedded_redis_started" in warnings[0], warnings

    # Progress: "name: done/total tasks done", redrawn in place (a carriage return)
    # while it runs, then once more with the time it took.
    progress: dict[str, list[tuple[int, int, str]]] = {}
    for name, done_n, total, took in re.findall(
        r"\r  (.+?): (\d+)/(\d+) tasks done(?: in (\d+\.\d\d) s)?", stdout
    ):
        progress.setdefault(name, []).append((int(done_n), int(total), took))
    assert list(progress) == ["seed DAG (8 tasks)", "Chain(a, Group(1000), c)"]
    for name, total in (("seed DAG (8 tasks)", 8), ("Chain(a, Group(1000), c)", 1002)):
        drawn = progress[name]
        assert len(drawn) >= 2 and {t for _, t, _ in drawn} == {total}, drawn
        counts = [n for n, _, _ in drawn]
        assert counts == sorted(counts) and counts[-1] == total, counts
        assert drawn[-1][2] and not any(took for *_, took in drawn[:-1]), drawn
