"""``streamflow worker pkg``: the package's App, and every ``tasks`` module under it
imported so that its actors run (``--discover PATTERN`` to choose others); bad input is
one line naming what was found."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from streamflow import App
from streamflow.cli.discover import load_worker_app
from tests.helpers import CLI, ROOT, remote_actor, stop, worker_process

pytestmark = pytest.mark.integration

PACKAGE = "tests.samples.discovered"
TASKS = [
    f"{PACKAGE}.billing.tasks",
    f"{PACKAGE}.shipping.tasks",
    f"{PACKAGE}.shipping.tasks.parcels",
]


@pytest.fixture
def url_set(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample package builds its App from STREAMFLOW_REDIS_URL when imported."""
    monkeypatch.setenv("STREAMFLOW_REDIS_URL", redis_url)


def test_a_package_brings_its_app_and_every_tasks_module(url_set: None) -> None:
    import tests.samples.discovered as package

    app, modules = load_worker_app(PACKAGE, None)
    assert app is package.app
    assert modules == TASKS  # tasks.py, a tasks package and its modules; not helpers.py
    assert {"invoice", "parcel"} <= set(app.actors)


def test_discover_chooses_the_modules_and_works_with_module_app(url_set: None) -> None:
    app, modules = load_worker_app(PACKAGE, "*.helpers")
    assert modules == [f"{PACKAGE}.shipping.helpers"]
    assert "label" in app.actors
    named, again = load_worker_app(f"{PACKAGE}:app", "tasks")  # a bare name: any depth
    assert (named, again) == (app, TASKS)
    assert load_worker_app(f"{PACKAGE}:app", None) == (app, [])  # module:app as before


def test_a_worker_runs_the_actors_it_discovered(app: App, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    process = worker_process(PACKAGE, redis_url, log, "--processes", "2")
    try:
        assert remote_actor(app, "invoice").send(7).result(timeout=60) == "invoice 7"
        assert remote_actor(app, "parcel").send(2.5).result(timeout=60) == "parcel of 2.5 kg"
    finally:
        stop(process, log)


def _worker(tmp_path: Path, *args: str) -> str:
    """``streamflow worker ARGS`` in ``tmp_path`` that must fail in one line; returns it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [*CLI, "worker", *args, "--processes", "1"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    return line


def _package(root: Path, name: str, init: str, **modules: str) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text(f"from streamflow import App\n{init}\n")
    for module, text in modules.items():
        (root / name / f"{module}.py").write_text(text)


def test_a_package_without_one_app_is_refused_naming_what_was_found(tmp_path: Path) -> None:
    url = "'redis://127.0.0.1:1/0'"
    _package(tmp_path, "none", "VERSION = 1")
    _package(tmp_path, "two", f"main = App({url})\nspare = App({url})")
    _package(tmp_path, "odd", "app = 'not an App'")
    _package(tmp_path, "broken", f"app = App({url})", tasks="import no_such_dependency\n")
    assert "none has no streamflow App" in _worker(tmp_path, "none")
    assert "several streamflow Apps (main, spare): name one, as two:main" in _worker(
        tmp_path, "two"
    )
    assert "odd.app is not a streamflow App (got str)" in _worker(tmp_path, "odd")
    broken = _worker(tmp_path, "broken")
    assert "broken.tasks" in broken and "no_such_dependency" in broken
    (tmp_path / "single.py").write_text(f"from streamflow import App\napp = App({url})\n")
    assert "single is a module" in _worker(tmp_path, "single:app", "--discover", "*.tasks")
