"""Kill the worker at every crash point; a restarted worker finishes every workflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from streamflow import App, Chain, Group
from streamflow.model.events import TaskStarted
from streamflow.model.messages import encode_wake
from streamflow.runtime.faults import CRASH_EXIT_CODE, POINTS
from tests.helpers import check_contract, definition_of
from tests.test_processes import ROOT, spawn

pytestmark = pytest.mark.integration

HITS = {"projector.between_chunks": 1, "projector.after_apply_before_archive": 1}


def crashing_worker(redis_url: str, point: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STREAMFLOW_REDIS_URL": redis_url,
        "STREAMFLOW_CRASH_POINT": f"{point}@{HITS.get(point, 3)}",
    }
    command = [sys.executable, "-m", "streamflow.cli", "worker", "tests.sample_app:app"]
    return subprocess.Popen(
        [*command, "--url", redis_url, "--concurrency", "4", "--processes", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


@pytest.mark.parametrize("point", POINTS)
def test_every_crash_point_is_recoverable(
    point: str, app: App, r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    def stub(*args: Any) -> Any:
        raise AssertionError("runs in the worker processes only")

    counted = app.actor(stub, actor_name="counted")
    c = counted.message
    seed = Chain(
        c("t1"),
        Group(Chain(c("t2"), c("t5")), c("t3"), Chain(c("t4"), Group(c("t6"), c("t7")))),
        c("t8"),
    )
    wide = Chain(Group(*(c(f"a{i}") for i in range(200))), Group(*(c(f"b{i}") for i in range(200))))
    handles = [app.submit(seed), app.submit(wide)]
    if point == "projector.between_chunks":  # a release of more than 1,000 tasks
        handles.append(app.submit(Chain(c("head"), Group(*(c(f"w{i}") for i in range(1100))))))

    if point.startswith("recovery."):
        # Wake-ups already due, as a dead inline projector leaves them: outcomes that
        # decide nothing schedule none, so without these the hits are left to a race.
        for i, handle in enumerate(handles * 3):
            r.xadd(app.keys.wake(0), {"m": encode_wake(handle.id, f"test:{i}")})
    crashed = crashing_worker(redis_url, point, tmp_path / "crashed.log")
    try:
        assert crashed.wait(timeout=120) == CRASH_EXIT_CODE, (tmp_path / "crashed.log").read_text()
    finally:
        crashed.kill()
    survivor = spawn(redis_url, "tasks", "timer", "recovery", log=tmp_path / "ok.log", lease_ms=500)
    try:
        results = [h.get_result(block=True, timeout=120) for h in handles]
    finally:
        survivor.kill()
        survivor.wait()
    assert results[0] == "t8"
    assert results[1] == [f"b{i}" for i in range(200)]
    for handle in handles:
        history = handle.history()
        check_contract(definition_of(app, history), history)  # one release per barrier...
        started = {
            (e.event.node, e.event.attempt) for e in history if isinstance(e.event, TaskStarted)
        }
        assert started, "every task started"
