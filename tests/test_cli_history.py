"""The history commands: ls, show, history filters, audit --all, against a real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import redis

from streamflow import App, Chain, Group
from streamflow.model.events import BarrierReleased, encode_event
from streamflow.runtime.timer import sweep_expired
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

RUN = [sys.executable, "-m", "streamflow.cli", "--log-level", "warning"]


def cli(redis_url: str, *args: str, code: int = 0) -> str:
    done = subprocess.run(
        [*RUN, *args, "--url", redis_url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == code, (done.stdout, done.stderr)
    return done.stdout


@pytest.fixture
def finished(app: App) -> dict[str, str]:
    """A completed, a failed and a running workflow, by status."""

    @app.actor
    def v(*piped: Any) -> int:
        return 1

    @app.actor(max_retries=1, min_backoff=0.01)
    def bad(*piped: Any) -> None:
        raise ValueError("boom")

    @app.actor(queue="nobody-reads")
    def later() -> None:
        pass

    with app.worker(queues=["default"], concurrency=4):
        # One after the other: submitted in the same millisecond, their order is a tie.
        ok = app.submit(Chain(v.message(), Group(Chain(v.message(), v.message()), v.message())))
        ok.get_result(block=True, timeout=30)
        failed = app.submit(Chain(v.message(), Group(bad.message(), v.message()), v.message()))
        failed.get_result(block=True, timeout=30, raise_on_error=False)
        running = app.submit(Chain(later.message(), v.message()))
    return {"completed": ok.id, "failed": failed.id, "running": running.id}


def test_ls_lists_newest_first_and_filters(
    app: App, finished: dict[str, str], redis_url: str
) -> None:
    rows = [json.loads(line) for line in cli(redis_url, "ls", "--json").splitlines()]
    assert [r["workflow_id"] for r in rows] == [
        finished["running"],
        finished["failed"],
        finished["completed"],
    ]
    by_id = {r["workflow_id"]: r for r in rows}
    for status, workflow_id in finished.items():
        assert by_id[workflow_id]["status"] == status
        assert by_id[workflow_id]["events"] == len(app.history(workflow_id)) or status != "running"
    assert by_id[finished["running"]]["ended_ms"] is None
    done = by_id[finished["completed"]]
    assert done["ended_ms"] >= done["submitted_ms"] > 0
    failed = cli(redis_url, "ls", "--status", "failed")
    assert finished["failed"] in failed and finished["completed"] not in failed
    assert failed.splitlines()[0].split() == [
        "WORKFLOW",
        "STATUS",
        "SUBMITTED",
        "DURATION",
        "EVENTS",
    ]
    assert len(cli(redis_url, "ls", "--limit", "1").splitlines()) == 2  # header + 1
    assert app.workflows(status="running")[0].workflow_id == finished["running"]
    with pytest.raises(ValueError, match="status must be one of"):
        app.workflows(status="done")


def test_show_draws_the_canvas_with_each_tasks_state(
    finished: dict[str, str], redis_url: str
) -> None:
    text = cli(redis_url, "show", finished["failed"])
    lines = text.splitlines()
    assert lines[0].startswith(f"workflow {finished['failed']}  failed")
    assert "error: ValueError: boom" in lines[1]
    assert "\x1b[" not in text  # no colours when stdout is not a terminal
    assert any("bad #" in line and "failed  attempt 2" in line for line in lines)
    assert lines[2] == "└─ chain"
    assert lines[-1].strip().startswith("└─ v #") and lines[-1].endswith("waiting")
    tree = json.loads(cli(redis_url, "show", finished["completed"], "--json"))
    chain = tree["children"][0]
    assert chain["kind"] == "chain"
    group = chain["children"][1]
    assert group["kind"] == "group"
    assert [c["kind"] for c in group["children"]] == ["chain", "task"]
    tasks = [chain["children"][0], *group["children"][0]["children"], group["children"][1]]
    assert all(t["state"] == "succeeded" and t["attempts"] == 1 for t in tasks)
    assert all(t["duration_ms"] is not None for t in tasks)
    running = json.loads(cli(redis_url, "show", finished["running"], "--json"))
    states = [t["state"] for t in running["children"][0]["children"]]
    assert states == ["queued", "waiting"]


def test_history_filters_by_node_and_type(finished: dict[str, str], redis_url: str) -> None:
    failures = [
        json.loads(line)
        for line in cli(
            redis_url, "history", finished["failed"], "--type", "TaskFailed", "--json"
        ).splitlines()
    ]
    assert [(f["attempt"], f["retry_delay_ms"] is None) for f in failures] == [
        (1, False),
        (2, True),
    ]
    node = failures[0]["node"]
    about = cli(redis_url, "history", finished["failed"], "--node", str(node)).splitlines()
    assert [line.split()[2] for line in about] == [
        "TaskEnqueued",
        "TaskStarted",
        "TaskFailed",
        "TaskEnqueued",
        "TaskStarted",
        "TaskFailed",
    ]


def test_audit_all_finds_a_forged_event(
    app: App, finished: dict[str, str], r: redis.Redis, redis_url: str
) -> None:
    assert "3 workflows" in cli(redis_url, "audit", "--all")
    running = finished["running"]
    # Forge a release of a barrier that nothing fed, straight into the running log.
    log_key = app.keys.log(running)
    n = r.xlen(log_key)
    r.xadd(log_key, {"e": encode_event(BarrierReleased(barrier=1, cause=1)), "s": n + 1})
    out = cli(redis_url, "audit", "--all", "--json", code=1)
    (finding,) = [json.loads(line) for line in out.splitlines()]
    assert finding["workflow_id"] == running
    assert finding["invariant"] == "release_once_when_covered"
    cli(redis_url, "audit", finished["completed"])


def test_an_expired_workflow_leaves_the_listing(app: App, r: redis.Redis) -> None:
    short = App(app.url, retention=0.05)

    @short.actor
    def v() -> int:
        return 1

    with short.worker(timer=False, recovery=False):
        handle = v.send()
        handle.get_result(block=True, timeout=10)
    assert [s.workflow_id for s in short.workflows()] == [handle.id]
    wait_until(
        lambda: sweep_expired(short.store, [0]) or not short.workflows(),
        10,
        message="expired",
    )
    assert short.workflows() == []
    short.close()


def test_an_error_is_one_line_unless_a_traceback_is_asked_for(app: App, redis_url: str) -> None:
    unknown = "0-" + "0" * 24
    done = subprocess.run(
        [*RUN, "status", unknown, "--url", redis_url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    expected = f"streamflow status: ResultMissing: no result for workflow {unknown}: unknown"
    assert done.stderr.strip() == expected
    asked = subprocess.run(
        [*RUN, "--traceback", "status", unknown, "--url", redis_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert asked.returncode == 1 and "Traceback (most recent call last)" in asked.stderr
