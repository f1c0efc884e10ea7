"""``streamflow result``: the result as JSON, the failure with exit 1, not finished with
exit 2; ``--wait`` waits and says how it goes; ``--version``."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import redis

from streamflow import App, ResultFailure, __version__
from tests.helpers import cli, hold

pytestmark = pytest.mark.integration


def test_results_failures_and_waits(app: App, r: redis.Redis, redis_url: str) -> None:
    @app.actor
    def pair(x: int) -> dict[str, Any]:
        return {"x": x, "twice": [x, x]}

    @app.actor
    def broken() -> None:
        raise ValueError("no luck")

    @app.actor
    def gate() -> None:
        hold(r, "open", 30)

    with app.worker(concurrency=2):
        done, failed, waiting = pair.send(2), broken.send(), gate.send()
        done.get_result(block=True, timeout=10)
        with pytest.raises(ResultFailure):
            failed.get_result(block=True, timeout=10)
        assert json.loads(cli(redis_url, "result", done.id).stdout) == {"x": 2, "twice": [2, 2]}
        failure = json.loads(cli(redis_url, "result", failed.id, code=1).stdout)
        assert failure["status"] == "failed" and failure["error"]["message"] == "no luck"
        running = cli(redis_url, "result", waiting.id, code=2)
        assert "not finished" in running.stderr
        timed_out = cli(redis_url, "result", waiting.id, "--wait", "--timeout", "0.5", code=2)
        assert f"waiting for {waiting.id}: running, 0 of 1 tasks done" in timed_out.stderr
        assert "did not finish within 0.5 s" in timed_out.stderr
        r.lpush("open", 1)
        assert cli(redis_url, "result", waiting.id, "--wait").stdout == "null\n"
    unknown = cli(redis_url, "result", app.new_workflow_id(), code=1)
    assert "unknown" in unknown.stderr


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamflow.cli", "--version"], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (0, f"streamflow {__version__}\n")
