"""Django, the extra ``streamflow[django]``.

Add ``"streamflow.contrib.django"`` to ``INSTALLED_APPS`` and describe the App in
settings; every key is an ``App`` argument in capitals, all optional:

```python
STREAMFLOW = {"URL": "redis://localhost:6379/0", "PREFIX": "sf", "RETENTION": 86400}
```

(no ``URL``: ``STREAMFLOW_REDIS_URL``, as for ``App()``). Actors go in the ``tasks``
module of an installed application, registered on the App these settings make:

```python
from streamflow.contrib.django import app

@app.actor
def send_welcome(user_id): ...
```

``python manage.py streamflow_worker [options]`` runs a worker for it, with every option
of ``streamflow worker``, after importing every installed application's ``tasks``
module. In a view, ``submit_on_commit(canvas)`` and ``send_on_commit(actor, ...)``
submit when the current database transaction commits, and not at all if it rolls back.
"""

from __future__ import annotations

import threading
from typing import Any

from streamflow.api.actors import Actor
from streamflow.api.app import App
from streamflow.api.canvas import CANVAS_TYPES, Canvas
from streamflow.contrib.common import app_options
from streamflow.logs import get_logger
from streamflow.runtime.hooks import Hooks, TaskInfo

try:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.db import close_old_connections, transaction
    from django.utils.module_loading import autodiscover_modules
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "streamflow's Django integration needs Django: pip install 'streamflow[django]'"
    ) from exc

__all__ = ["app", "discover", "get_app", "send_on_commit", "submit_on_commit"]

log = get_logger(__name__)
TASKS_MODULE = "tasks"
"""The module of each installed application that ``discover`` imports."""

_lock = threading.Lock()
_app: App | None = None


def get_app() -> App:
    """The App ``settings.STREAMFLOW`` describes, made at the first call.

    Raises:
        ImproperlyConfigured: ``STREAMFLOW`` is not a dict of ``App`` arguments.
    """
    global _app
    with _lock:
        if _app is None:
            described = getattr(settings, "STREAMFLOW", {})
            if not isinstance(described, dict):
                raise ImproperlyConfigured(
                    f"settings.STREAMFLOW must be a dict (got {type(described).__name__})"
                )
            try:
                _app = App(**app_options(described))
            except ValueError as exc:
                raise ImproperlyConfigured(f"settings.STREAMFLOW: {exc}") from None
            _app.add_hooks(DatabaseConnections())
            log.debug("django_app_made", app=repr(_app))
        return _app


class DatabaseConnections(Hooks):
    """Each task is to a worker thread what a request is to Django: connections past
    their ``CONN_MAX_AGE``, or broken, are closed before and after it (a worker's threads
    live for days; a connection the database dropped meanwhile would fail the task)."""

    def before_task(self, task: TaskInfo) -> None:
        close_old_connections()

    def after_task(
        self, task: TaskInfo, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        close_old_connections()


def __getattr__(name: str) -> Any:
    # ``from streamflow.contrib.django import app``: the App is made when first asked
    # for, once Django's settings are ready, not when this module is imported.
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def discover() -> None:
    """Import the ``tasks`` module of every installed application (their actors
    register with the App)."""
    autodiscover_modules(TASKS_MODULE)


def submit_on_commit(canvas: Canvas, *, using: str | None = None, **options: Any) -> str:
    """Submit ``canvas`` once the current transaction of database ``using`` commits
    (at once outside a transaction); nothing is submitted if it rolls back.

    Args:
        canvas: what to submit.
        using: the database alias (default: the default database).
        options: ``app.submit``'s options (``on_failure``, ``retention``).

    Returns:
        The workflow's id, chosen now (store it with the rows the transaction writes).

    Raises:
        TypeError: ``canvas`` is not a canvas.
    """
    if not isinstance(canvas, CANVAS_TYPES):
        raise TypeError(
            f"submit_on_commit needs a canvas: a message, Chain, Group or WithDelay "
            f"(got {type(canvas).__name__})"
        )
    streamflow_app = get_app()
    workflow_id = streamflow_app.new_workflow_id()

    def submit() -> None:
        streamflow_app.submit(canvas, workflow_id=workflow_id, **options)

    transaction.on_commit(submit, using=using)
    return workflow_id


def send_on_commit(
    actor: Actor[Any, Any], *args: Any, using: str | None = None, **kwargs: Any
) -> str:
    """``actor.send(*args, **kwargs)`` once the current transaction commits (see
    ``submit_on_commit``); returns the workflow's id.

    Raises:
        TypeError: the arguments do not fit the actor's function.
    """
    return submit_on_commit(actor.message(*args, **kwargs), using=using)
