"""The shard count is stored in Redis by the first App or worker; one with another count
refuses, naming both, before it writes anything (issue #18's "shards that spread")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from streamflow import App, StreamflowError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def test_the_first_submit_records_the_count_and_another_count_is_refused(
    r: redis.Redis, redis_url: str
) -> None:
    two, three = App(redis_url, shards=2), App(redis_url, shards=3)
    try:

        @two.actor
        def noop() -> None:
            pass

        three.actor(noop.fn)
        two.submit(noop.message())
        assert r.get("sf:shards") == b"2"
        before = sorted(r.scan_iter())
        with pytest.raises(StreamflowError, match=r"shards=3.*spread over 2 shards"):
            three.submit(noop.message())
        with pytest.raises(StreamflowError, match="spread over 2 shards"):
            three.submit_many([noop.message()])
        assert sorted(r.scan_iter()) == before  # nothing written
        # Another prefix is another deployment, with its own count.
        other = App(redis_url, shards=3, prefix="other")
        other.actor(noop.fn)
        other.submit(noop.message())
        assert r.get("other:shards") == b"3"
        other.close()
    finally:
        two.close()
        three.close()


def test_a_worker_of_another_count_refuses_to_start_in_one_line(
    r: redis.Redis, redis_url: str
) -> None:
    r.set("sf:shards", 4)  # tests.sample_app's App is given 1
    command = [sys.executable, "-m", "streamflow.cli", "worker", "tests.sample_app:app"]
    env = {**os.environ, "STREAMFLOW_REDIS_URL": redis_url, "SAMPLE_APP_SHARDS": "1"}
    done = subprocess.run(
        [*command, "--url", redis_url, "--processes", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "shards=1" in done.stderr and "spread over 4 shards" in done.stderr
    assert "Traceback" not in done.stderr
