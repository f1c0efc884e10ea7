"""streamflow.contrib.django in a real minimal Django project (tests/django_project: a
settings module, an app with a model, a view and a tasks module), its SQLite database
in a temporary folder, and the session's Redis: submits follow the transaction, and
``manage.py streamflow_worker`` runs as a real process.

Django is imported in the fixtures and tests: the legs of scripts/test whose venvs lack
the extra still collect this module (and deselect its tests, which are not integration
tests); run there, they fail on the missing import."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamflow import App, ResultMissing
from tests.helpers import ROOT, stop

PROJECT = ROOT / "tests" / "django_project"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Path]:
    """Django set up in this process for the test project; yields its database file."""
    import django
    from django.core.management import call_command

    database = tmp_path_factory.mktemp("django") / "shop.sqlite3"
    with pytest.MonkeyPatch.context() as patch:  # undone after this module's tests
        patch.setenv("DJANGO_SETTINGS_MODULE", "proj.settings")
        patch.setenv("SHOP_DB", str(database))
        patch.setenv("STREAMFLOW_REDIS_URL", redis_url)
        patch.syspath_prepend(str(PROJECT))
        django.setup()
        call_command("migrate", run_syncdb=True, verbosity=0)
        yield database
        from streamflow.contrib.django import get_app

        get_app().close()  # its subscription would outlive this module


@pytest.fixture
def shop(project: Path, r: Any) -> App:
    """The project's App (settings.STREAMFLOW), on a flushed Redis."""
    from streamflow.contrib.django import get_app

    return get_app()


def test_a_committed_order_is_sent_and_a_rolled_back_one_is_not(shop: App) -> None:
    from django.test import Client
    from shop.models import Order

    client = Client()
    placed = client.post("/orders", {"item": "book"})
    refused = client.post("/orders", {"item": "out-of-stock"})
    assert (placed.status_code, refused.status_code) == (201, 409)
    sent, never_sent = placed.json()["workflow_id"], refused.json()["workflow_id"]

    assert [w.workflow_id for w in shop.workflows()] == [sent]
    assert shop.handle(sent).status().status == "running"
    with pytest.raises(ResultMissing, match="unknown"):
        shop.handle(never_sent).status()
    # The rolled-back order is gone; the committed one waits for its task.
    assert list(Order.objects.values_list("item", "status")) == [("book", "placed")]
    # The settings' prefix is the App's.
    assert shop.keys.prefix == "shop"


def test_nothing_is_sent_before_the_commit(shop: App) -> None:
    from django.db import transaction
    from shop.tasks import confirm

    from streamflow.contrib.django import send_on_commit, submit_on_commit

    with transaction.atomic():
        first = send_on_commit(confirm, 1)
        second = submit_on_commit(confirm.message(2))
        assert shop.workflows() == []
    assert {w.workflow_id for w in shop.workflows()} == {first, second}
    with pytest.raises(TypeError, match="needs a canvas"):
        submit_on_commit(confirm)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        send_on_commit(confirm, 1, 2)


def test_manage_py_streamflow_worker_runs_the_tasks(
    shop: App, project: Path, redis_url: str, tmp_path: Path
) -> None:
    from django.test import Client
    from shop.models import Order

    placed = Client().post("/orders", {"item": "lamp"}).json()
    log = tmp_path / "worker.log"
    command = [sys.executable, "manage.py", "streamflow_worker", "--concurrency", "2"]
    command += ["--queues", "default", "--settings", "proj.settings", "--log-level", "debug"]
    worker = subprocess.Popen(command, cwd=PROJECT, env=dict(os.environ), stderr=log.open("wb"))
    try:
        assert shop.handle(placed["workflow_id"]).result(timeout=30) == "lamp"
        order = Order.objects.get(pk=placed["order"])
        assert order.status == "confirmed"  # written by the worker process
    finally:
        stop(worker, log)


def test_the_worker_command_speaks_streamflow_workers_options(project: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "manage.py", "streamflow_worker", "--help"],
        cwd=PROJECT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "--concurrency" in shown.stdout and "--queues" in shown.stdout
    wrong = subprocess.run(
        [sys.executable, "manage.py", "streamflow_worker", "--concurrency", "many"],
        cwd=PROJECT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2
    assert "invalid int value: 'many'" in wrong.stderr


def test_bad_settings_are_named(project: Path) -> None:
    from streamflow.contrib.common import app_options

    with pytest.raises(ValueError, match="unknown streamflow setting 'REDIS': expected one of URL"):
        app_options({"REDIS": "redis://x"})
    assert app_options({"URL": "redis://x", "SHARDS": 2}) == {"url": "redis://x", "shards": 2}


def test_each_task_starts_without_the_last_ones_database_connection(shop: App) -> None:
    """As at the end of a request, a task's connection is closed after it (the project
    keeps none: CONN_MAX_AGE is 0), so the next task on that thread opens a fresh one."""
    from django.db import connection
    from shop.models import Order

    @shop.actor
    def count_orders(*piped: object) -> bool:
        fresh = connection.connection is None
        Order.objects.count()
        assert connection.connection is not None
        return fresh

    with shop.worker(concurrency=1):
        assert [count_orders.send().result(timeout=30) for _ in range(3)] == [True] * 3
