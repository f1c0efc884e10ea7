"""streamflow.contrib.flask with a real minimal application factory
(tests/flask_project/flask_shop.py): requests through Flask's test client submit to the
session's Redis, and ``flask streamflow worker`` runs as a real process.

Flask is imported by the fixture: the legs of scripts/test whose venvs lack the extra
still collect this module (and deselect its tests, which are not integration tests);
run there, they fail on the missing import."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamflow import App
from tests.helpers import ROOT, stop

PROJECT = ROOT / "tests" / "flask_project"
FLASK = [sys.executable, "-m", "flask", "--app", "flask_shop:create_app"]


@pytest.fixture
def shop(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(PROJECT))
    import flask_shop

    yield flask_shop


def test_requests_submit_and_the_flask_command_runs_the_worker(
    shop: Any, redis_url: str, r: Any, tmp_path: Path
) -> None:
    web = shop.create_app({"STREAMFLOW_URL": redis_url, "STREAMFLOW_PREFIX": "flaskshop"})
    client = web.test_client()
    ids = [client.post("/squares", data={"x": x}).json["id"] for x in range(3)]

    with web.app_context():
        app: App = shop.sf.app
    assert app.keys.prefix == "flaskshop"
    assert sorted(w.workflow_id for w in app.workflows()) == sorted(ids)
    assert sorted(app.actors) == ["plus_one", "square"]

    log = tmp_path / "worker.log"
    env = {**os.environ, "FLASK_STREAMFLOW_URL": redis_url, "FLASK_STREAMFLOW_PREFIX": "flaskshop"}
    command = [*FLASK, "streamflow", "worker", "--queues", "default", "--concurrency", "2"]
    worker = subprocess.Popen(command, cwd=PROJECT, env=env, stderr=log.open("wb"))
    try:
        answers = [client.get(f"/squares/{i}").json["result"] for i in ids]
    finally:
        stop(worker, log)
        app.close()
    assert answers == [1, 2, 5]


def test_the_worker_command_has_streamflow_workers_options(shop: Any) -> None:
    shown = subprocess.run(
        [*FLASK, "streamflow", "worker", "-h"],
        cwd=PROJECT,
        env={**os.environ, "FLASK_STREAMFLOW_URL": "redis://127.0.0.1:1/0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "--concurrency" in shown.stdout and "--roles" in shown.stdout


def test_misuse_is_named(shop: Any, redis_url: str) -> None:
    with pytest.raises(ValueError, match="unknown streamflow setting 'STREAMFLOW_REDIS'"):
        shop.create_app({"STREAMFLOW_REDIS": redis_url})
    with pytest.raises(RuntimeError, match="no Flask application context"):
        shop.square.send(2)
    import flask

    bare = flask.Flask("bare")
    with bare.app_context(), pytest.raises(RuntimeError, match="has no streamflow App"):
        shop.sf.submit(shop.square.message(2))
    with pytest.raises(TypeError, match=r"unknown actor options \['retries'\]"):
        shop.sf.actor(retries=3)
