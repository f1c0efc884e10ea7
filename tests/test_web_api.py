"""The dashboard's JSON API (``streamflow web``), through a real uvicorn server on a real
Redis: every endpoint, the actions and what guards them (read-only, the token, JSON
bodies, the Host header), errors that name the bad value, and the command itself."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from streamflow import App, Chain, Group, WithDelay
from streamflow.api.actors import Actor
from streamflow.api.canvas import Callback
from streamflow.api.compile import compile_canvas
from streamflow.model.options import ActorOptions
from streamflow.model.state import State
from streamflow.store import roster
from streamflow.web import LOOPBACK_HOSTS, create_app
from streamflow.web.graph import MAX_NODES, layout
from tests.helpers import CLI
from tests.waiting import wait_until
from tests.web_helpers import Scene, scene, serving


@pytest.fixture
def seen(app: App, r: redis.Redis) -> Iterator[Scene]:
    with scene(app, r) as found:
        yield found


def get(base: str, path: str, status: int = 200) -> Any:
    reply = httpx.get(base + path, timeout=10)
    assert reply.status_code == status, (path, reply.text)
    return reply.json()


def post(base: str, path: str, body: Any = None, status: int = 200, **headers: str) -> Any:
    reply = httpx.post(base + path, json=body if body is not None else {}, headers=headers)
    assert reply.status_code == status, (path, reply.text)
    return reply.json()


def test_every_page_reads_its_endpoint(app: App, seen: Scene) -> None:
    with serving(create_app(app)) as base:
        config = get(base, "/api/config")
        assert config["read_only"] is False and config["token_required"] is False
        assert set(config["statuses"]) == {"running", "completed", "failed", "cancelled"}

        listed = get(base, "/api/workflows")["workflows"]
        statuses = {w["workflow_id"]: w["status"] for w in listed}
        assert statuses == {seen.running.id: "running", seen.failed.id: "failed"}
        assert [
            w["workflow_id"] for w in get(base, "/api/workflows?status=failed")["workflows"]
        ] == [seen.failed.id]
        by_actor = get(base, "/api/workflows?actor=boom")
        assert [w["workflow_id"] for w in by_actor["workflows"]] == [seen.failed.id]
        assert by_actor["scan_limit"] == 1000
        assert get(base, "/api/workflows?actor=nobody")["workflows"] == []
        submitted = min(w["submitted_ms"] for w in listed)
        assert len(get(base, f"/api/workflows?since={submitted}")["workflows"]) == 2
        assert get(base, "/api/workflows?until=2001-01-01T00:00:00Z")["workflows"] == []
        assert get(base, "/api/workflows?since=2999-01-01T00:00")["workflows"] == []
        assert len(get(base, "/api/workflows?limit=1")["workflows"]) == 1

        running = get(base, f"/api/workflows/{seen.running.id}")
        assert running["status"] == "running"
        assert running["counts"] == {
            "pending": 1,
            "enqueued": 0,
            "running": 1,
            "succeeded": 2,
            "failed": 0,
            "cancelled": 0,
        }
        states = {n["id"]: n["state"] for n in running["graph"]["nodes"] if n["kind"] == "task"}
        assert states == {0: "succeeded", 2: "running", 3: "succeeded", 5: "pending"}
        tasks = {t["node"]: t for t in running["tasks"]}
        assert tasks[0]["arguments"] == {"args": [1], "kwargs": {}}
        assert tasks[0]["result"] == 10 and tasks[3]["result"] == 20
        assert tasks[2]["actor"] == "hold" and tasks[2]["started_ms"] is not None
        assert [e["type"] for e in running["events"]][:2] == ["WorkflowSubmitted", "TaskEnqueued"]
        assert len(get(base, f"/api/workflows/{seen.running.id}?events=2")["events"]) == 2

        failed = get(base, f"/api/workflows/{seen.failed.id}")
        assert failed["status"] == "failed" and failed["error"]["type"] == "ValueError"
        (ended,) = [e for e in failed["events"] if e["type"] == "WorkflowFailed"]
        assert ended["error"]["message"] == "no luck with x" and "traceback" not in ended["error"]
        boom = next(t for t in failed["tasks"] if t["actor"] == "boom")
        assert boom["error"]["message"] == "no luck with x"
        assert "raise ValueError" in boom["error"]["traceback"]
        assert boom["arguments"]["args"] == ["x"]
        assert {n["state"] for n in failed["graph"]["nodes"] if n["kind"] == "task"} == {
            "succeeded",
            "failed",
            "pending",
        }

        (worker,) = get(base, "/api/workers")["workers"]
        assert worker["state"] == "live" and worker["concurrency"] == 4
        queues = get(base, "/api/queues")
        assert queues["paused"] == {"queues": ["slow"], "actors": []}
        (default,) = [q for q in queues["queues"] if q["queue"] == "default"]
        assert (default["length"], default["in_flight"], default["dead"]) == (1, 1, 1)
        assert all(q["shard"] is not None for q in get(base, "/api/queues?by_shard=1")["queues"])

        letters = get(base, "/api/dead-letters")
        assert letters["total"] == 1
        assert [d["id"] for d in letters["dead_letters"]] == [seen.dead_id]
        letter = get(base, f"/api/dead-letters/{seen.dead_id}")
        assert letter["queue_name"] == "default" and letter["contents"]["kind"] == "unreadable"
        assert bytes.fromhex(letter["data_hex"]) == b"not a message"


def test_the_actions_act(app: App, seen: Scene) -> None:
    with serving(create_app(app)) as base:
        requeued = post(base, f"/api/dead-letters/{seen.dead_id}/requeue")
        assert requeued["requeued"] == seen.dead_id
        # Still not a message: the worker dead-letters it again, under a new id.
        again = wait_until(lambda: app.dead_letters.list(10), 10, message="the dead letter back")
        assert [d.id for d in again] != [seen.dead_id]
        assert post(base, "/api/dead-letters/purge") == {"purged": 1}
        assert app.dead_letters.list(10) == []

        assert post(base, "/api/resume", {"queue": "slow"}) == {
            "resumed": {"queue": "slow", "actor": None}
        }
        assert not app.paused()

        done = post(base, f"/api/workflows/{seen.running.id}/cancel", {"reason": "from a test"})
        assert done == {"workflow_id": seen.running.id, "cancelled": True}
        status = seen.running.status()
        assert (status.status, status.reason) == ("cancelled", "from a test")
        ended = post(base, f"/api/workflows/{seen.failed.id}/cancel", status=409)
        assert ended["error"] == f"workflow {seen.failed.id} had already ended (failed)"
        refused = post(base, f"/api/workflows/{seen.running.id}/resume", status=409)
        assert "only a failed workflow can be resumed (this one is cancelled)" in refused["error"]
        resumed = post(base, f"/api/workflows/{seen.failed.id}/resume", {"reason": "a test"})
        assert resumed["workflow_id"] == seen.failed.id and resumed["resumed"]
        history = app.history(seen.failed.id)
        assert [type(e.event).__name__ for e in history].count("WorkflowResumed") == 1


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/workflows?limit=0", 400, "limit must be a whole number from 1 to 500 (got '0')"),
        ("/api/workflows?limit=many", 400, "(got 'many')"),
        ("/api/workflows?status=stuck", 400, "status must be one of running, "),
        ("/api/workflows?since=yesterday", 400, "since must be an ISO 8601 time"),
        ("/api/workflows?until=13:00", 400, "(got '13:00')"),
        ("/api/workflows/nope", 400, "workflow id must look like '<shard>-<hex>' (got 'nope')"),
        ("/api/workflows/7-abc", 400, "is on shard 7, but this App has 1 shard"),
        ("/api/workflows/0-abc", 404, "no workflow with id '0-abc' (unknown or expired)"),
        ("/api/workflows/0-abc?events=-1", 400, "events must be a whole number from 1 to 5000"),
        ("/api/workers?all=maybe", 400, "all must be 1, true, 0 or false (got 'maybe')"),
        ("/api/dead-letters?limit=501", 400, "limit must be a whole number from 1 to 500"),
        ("/api/dead-letters/latest", 400, "a dead letter's id looks like"),
        ("/api/dead-letters/1-0", 404, "no dead letter with id '1-0'"),
        ("/api/nothing", 404, "no such page: /api/nothing"),
    ],
)
def test_bad_input_is_named(app: App, path: str, status: int, says: str) -> None:
    with serving(create_app(app)) as base:
        assert says in get(base, path, status)["error"]


def test_bad_actions_are_named(app: App) -> None:
    with serving(create_app(app)) as base:
        assert (
            "no workflow with id '0-abc'"
            in post(base, "/api/workflows/0-abc/cancel", status=404)["error"]
        )
        said = post(base, "/api/dead-letters/1-0/requeue", status=404)["error"]
        assert said == "no dead letter with id '1-0'"
        said = post(base, "/api/resume", {}, status=400)["error"]
        assert said == (
            "resume needs a queue or an actor's name: "
            "name a queue or an actor (queue=..., actor=...)"
        )
        assert post(base, "/api/resume", ["slow"], status=400)["error"].startswith(
            "the body must be a JSON object"
        )
        reply = httpx.post(f"{base}/api/resume", content=b"queue=slow")
        assert reply.status_code == 415, reply.text
        reply = httpx.post(
            f"{base}/api/resume", content=b"{", headers={"content-type": "application/json"}
        )
        assert reply.status_code == 400 and "JSON object" in reply.json()["error"]
        assert httpx.get(f"{base}/api/resume").status_code == 405


def test_read_only_refuses_every_action(app: App, seen: Scene) -> None:
    with serving(create_app(app, read_only=True)) as base:
        assert get(base, "/api/config")["read_only"] is True
        for path in (
            f"/api/workflows/{seen.running.id}/cancel",
            f"/api/dead-letters/{seen.dead_id}/requeue",
            "/api/dead-letters/purge",
            "/api/resume",
        ):
            said = post(base, path, {"queue": "slow"}, status=403)["error"]
            assert said == "this dashboard is read-only (streamflow web --read-only)"
        assert get(base, f"/api/workflows/{seen.running.id}")["status"] == "running"
    assert seen.running.status().status == "running"
    assert app.dead_letters.list(10)[0].id == seen.dead_id and app.paused().queues == {"slow"}


def test_actions_need_the_token_when_one_is_set(app: App, seen: Scene) -> None:
    path = f"/api/workflows/{seen.running.id}/cancel"
    with serving(create_app(app, token="s3cret")) as base:
        assert get(base, "/api/config")["token_required"] is True
        assert get(base, "/api/workflows")["workflows"]  # reading needs none
        needs = "this action needs the header Authorization: Bearer <token>"
        assert post(base, path, status=401)["error"] == needs
        assert post(base, path, status=401, Authorization="Bearer guess")["error"] == needs
        assert post(base, path, status=401, Authorization="Basic s3cret")["error"] == needs
        assert seen.running.status().status == "running"
        assert post(base, path, Authorization="Bearer s3cret")["cancelled"] is True
    assert seen.running.status().status == "cancelled"


def test_a_loopback_dashboard_takes_only_loopback_host_names(app: App) -> None:
    with serving(create_app(app, allowed_hosts=LOOPBACK_HOSTS)) as base:
        assert httpx.get(f"{base}/api/config").status_code == 200
        rebound = httpx.get(f"{base}/api/config", headers={"host": "evil.example"})
        assert rebound.status_code == 400
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and '<script src="/static/app.js"' in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert httpx.get(f"{base}/static/style.css").status_code == 200


def test_the_command_serves_on_loopback_and_says_where(redis_url: str, r: redis.Redis) -> None:
    command = [*CLI, "web", "--port", "0", "--read-only", "--url", redis_url]
    served = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert served.stdout is not None
        line = served.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:"), line
        base = line.split()[-1]
        assert get(base, "/api/config")["read_only"] is True
        assert post(base, "/api/resume", {"queue": "q"}, status=403)
        assert httpx.get(f"{base}/api/config", headers={"host": "evil.example"}).status_code == 400
    finally:
        served.terminate()
        served.communicate(timeout=30)


def test_the_command_takes_its_token_from_the_environment(
    app: App, redis_url: str, r: redis.Redis
) -> None:
    app.pause(queue="slow")
    command = [*CLI, "web", "--port", "0", "--url", redis_url]
    environment = {**os.environ, "STREAMFLOW_WEB_TOKEN": "s3cret"}
    served = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )
    try:
        assert served.stdout is not None
        base = served.stdout.readline().split()[-1]
        assert get(base, "/api/config")["token_required"] is True
        needs = "this action needs the header Authorization: Bearer <token>"
        assert post(base, "/api/resume", {"queue": "slow"}, status=401)["error"] == needs
        assert app.paused().queues == {"slow"}
        resumed = post(base, "/api/resume", {"queue": "slow"}, Authorization="Bearer s3cret")
        assert resumed == {"resumed": {"queue": "slow", "actor": None}}
        assert not app.paused()
    finally:
        served.terminate()
        served.communicate(timeout=30)


def test_without_the_extra_the_command_says_how_to_get_it(redis_url: str) -> None:
    hide = "import sys; sys.modules['starlette'] = None; from streamflow.cli.main import main; "
    done = subprocess.run(
        [sys.executable, "-c", hide + f"raise SystemExit(main(['web', '--url', {redis_url!r}]))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "streamflow web: needs the web extra: pip install 'streamflow[web]'\n"


def _actor(name: str) -> Actor[Any, Any]:
    return Actor(lambda *args: None, name=name, options=ActorOptions())


def test_the_layout_puts_each_node_after_what_it_waits_for() -> None:
    a, b, c, d, e, told = (_actor(name) for name in ("a", "b", "c", "d", "e", "told"))
    canvas = Chain(
        a.message(),
        Group(b.message(), Chain(c.message(), d.message_with_options(on_success=told))),
        WithDelay(e.message(), 1),
    )
    definition = compile_canvas(
        canvas, on_failure=Callback(actor_name="told", options=ActorOptions())
    ).definition
    drawn = layout(definition, State())
    x = {n["id"]: n["x"] for n in drawn["nodes"]}
    for edge in drawn["edges"]:
        assert x[edge["from"]] < x[edge["to"]], edge
    assert sum(edge["kind"] == "callback" for edge in drawn["edges"]) == 1
    tasks = [n for n in drawn["nodes"] if n["kind"] != "barrier"]
    assert [n["actor"] for n in tasks] == ["a", "b", "c", "d", "told", "e", "told"]
    assert {n["state"] for n in tasks} == {"pending"}
    assert [n["kind"] for n in tasks].count("callback") == 2
    # The workflow's on_failure comes after everything else.
    assert x[definition.on_failure] == max(x.values())
    assert all(n["x"] + n["w"] <= drawn["width"] for n in drawn["nodes"])
    assert all(n["y"] + n["h"] <= drawn["height"] for n in drawn["nodes"])


def test_a_chain_of_thousands_of_steps_is_laid_out_and_cut_short() -> None:
    step = _actor("step")
    definition = compile_canvas(Chain(*(step.message() for _ in range(3000)))).definition
    drawn = layout(definition, State())
    assert drawn["truncated"] is True and len(drawn["nodes"]) == MAX_NODES
    xs = [n["x"] for n in drawn["nodes"]]
    assert xs == sorted(xs) and len(set(xs)) == MAX_NODES  # one long row, in order


def test_a_bug_is_answered_500_without_its_traceback(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("a bug, with secrets in its traceback")

    monkeypatch.setattr(roster, "read", broken)
    with serving(create_app(app)) as base:
        said = get(base, "/api/workers", 500)
    assert said == {"error": "internal error: RuntimeError (see the server's log)"}


def test_a_large_result_is_named_not_read(r: redis.Redis, redis_url: str) -> None:
    app = App(redis_url, large_result_bytes=100)
    try:

        @app.actor
        def big() -> str:
            return secrets.token_hex(500)  # hardly compressible

        with app.worker(concurrency=1):
            # Two tasks: a lone one ends in one step, its result in line.
            handle = app.submit(Group(big.message(), big.message()))
            handle.get_result(block=True, timeout=10)
        with serving(create_app(app)) as base:
            tasks = get(base, f"/api/workflows/{handle.id}")["tasks"]
        for task in tasks:
            assert task["result"].startswith("(a large result, stored out of line in field ")
    finally:
        app.close()


def test_a_workflow_names_its_parent_and_its_children(app: App) -> None:
    from streamflow import Child, current_task

    @app.actor
    def leaf(n: int) -> int:
        return n

    @app.actor
    def starter() -> str:
        task = current_task()
        assert task is not None
        return task.submit(leaf.message(2), detached=True).id

    with app.worker(concurrency=2):
        parent = app.submit(
            Chain(Child(leaf.message(1)), starter.message_with_options(pipe_ignore=True))
        )
        detached_id = parent.result(timeout=15)
        app.handle(detached_id).result(timeout=15)
    child_id = next(iter(parent.snapshot().state.children))
    with serving(create_app(app)) as base:
        shown = get(base, f"/api/workflows/{parent.id}")
        assert shown["parent"] is None
        assert [(c["workflow_id"], c["node"], c["detached"]) for c in shown["children"]] == [
            (child_id, 0, False),
            (detached_id, 2, True),
        ]
        child = get(base, f"/api/workflows/{child_id}")
        assert child["parent"] == {"workflow_id": parent.id, "node": 0, "attempt": 1}
        assert child["children"] == []
        detached = get(base, f"/api/workflows/{detached_id}")
        assert detached["parent"]["detached"] is True
