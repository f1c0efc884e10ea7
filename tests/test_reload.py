"""``streamflow worker --watch DIR``: a change to a .py file under DIR restarts the workers
gracefully, and they run the new code. Needs watchfiles (the extra streamflow[watch]), so
not an integration test: the other venvs of scripts/test lack it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streamflow import App
from tests.helpers import ROOT, remote_actor
from tests.waiting import wait_until

APP = """
import os
from streamflow import App

app = App(os.environ["STREAMFLOW_REDIS_URL"])
"""
TASKS = """
from hot import app


@app.actor
def edition() -> str:
    return {edition!r}
"""


def test_a_changed_file_restarts_the_workers_on_the_new_code(
    app: App, redis_url: str, tmp_path: Path
) -> None:
    package = tmp_path / "hot"
    package.mkdir()
    (package / "__init__.py").write_text(APP)
    (package / "tasks.py").write_text(TASKS.format(edition="first"))
    log = tmp_path / "worker.log"
    env = {**os.environ, "STREAMFLOW_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "streamflow.cli", "--log-level", "info", "worker", "hot"]
    command += ["--url", redis_url, "--processes", "1", "--watch", str(package)]
    boss = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=log.open("wb"))
    edition = remote_actor(app, "edition")
    try:
        assert edition.send().result(timeout=60) == "first"
        # A typo: the old worker stops (gracefully), the new one cannot start, and the
        # supervisor waits for the next change rather than give up or restart in a loop.
        (package / "tasks.py").write_text("def edition(:\n")
        wait_until(lambda: "worker_not_started" in log.read_text(), 60, 0.1, message="typo")
        assert "worker_stopped" in log.read_text() and boss.poll() is None
        assert "SyntaxError" in log.read_text() and "Traceback" not in log.read_text()
        (package / "tasks.py").write_text(TASKS.format(edition="second edition"))
        wait_until(
            lambda: log.read_text().count("worker_started") == 2, 60, 0.1, message="a restart"
        )
        text = log.read_text()
        assert text.count("code_changed_restarting_workers") == 2, text
        assert "worker_process_exited" not in text  # nothing restarted behind the reloads
        assert edition.send().result(timeout=60) == "second edition"
    finally:
        boss.terminate()
        assert boss.wait(60) == 0, log.read_text()


def test_without_the_extra_watch_says_what_to_install(tmp_path: Path) -> None:
    code = "import sys; sys.modules['watchfiles'] = None; "
    code += "from streamflow.cli.main import main; sys.exit(main(sys.argv[1:]))"
    args = ["worker", "tests.sample_app:app", "--watch", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr == (
        "streamflow worker: ImportError: --watch needs watchfiles: "
        "pip install 'streamflow[watch]'\n"
    )
