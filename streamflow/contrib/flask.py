"""Flask, the extra ``streamflow[flask]``: an extension for the application-factory
pattern, and the ``flask streamflow worker`` command.

```python
sf = Streamflow()                 # in a module of its own, e.g. extensions.py

@sf.actor                         # actors register on the extension
def send_welcome(user_id): ...

def create_app():
    flask_app = Flask(__name__)
    flask_app.config.from_prefixed_env()   # e.g. FLASK_STREAMFLOW_URL
    sf.init_app(flask_app)
    return flask_app
```

Each application's App is made by ``init_app`` from its config: every key
``STREAMFLOW_<NAME>`` is the ``App`` argument ``<name>`` (``STREAMFLOW_URL``,
``STREAMFLOW_PREFIX``, ``STREAMFLOW_RETENTION``, ...; no URL: ``STREAMFLOW_REDIS_URL``
from the environment, as for ``App()``). In a request, ``sf.app`` is the current
application's App, and ``actor.send(...)`` submits through it.
``flask --app factory streamflow worker [options]`` runs a worker with the options of
``streamflow worker``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from streamflow.api.actors import Actor, registrar
from streamflow.api.aio import AsyncWorkflowHandle
from streamflow.api.app import App
from streamflow.api.canvas import Canvas
from streamflow.api.handles import WorkflowHandle
from streamflow.api.options import actor_options
from streamflow.contrib.common import app_options, run_worker

try:
    import click
    from flask import Flask, current_app, has_app_context
    from flask.cli import AppGroup
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "streamflow's Flask integration needs Flask: pip install 'streamflow[flask]'"
    ) from exc

__all__ = ["Streamflow"]

EXTENSION = "streamflow"
"""The key of ``flask_app.extensions`` holding the application's App."""
CONFIG_PREFIX = "STREAMFLOW_"
SPEC = "streamflow.contrib.flask:streamflow_app"
"""What ``flask streamflow worker`` hands to ``streamflow worker``."""
_ACTOR_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(App.actor).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
}
"""``App.actor``'s options and their defaults."""


class Streamflow:
    """The Flask extension: ``Streamflow(flask_app)``, or ``Streamflow()`` then
    ``init_app(flask_app)`` for each application a factory makes."""

    def __init__(self, app: Flask | None = None) -> None:
        self.actors: dict[str, Actor[Any, Any]] = {}
        """The actors registered on the extension: every App it makes runs them."""
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Make ``app``'s streamflow App from its config and add the ``streamflow``
        commands to its CLI.

        Raises:
            ValueError: a ``STREAMFLOW_`` config key that names no ``App`` argument.
        """
        config = app.config.items()
        settings = {key: value for key, value in config if key.startswith(CONFIG_PREFIX)}
        streamflow_app = App(**app_options(settings, CONFIG_PREFIX))
        # One registry: actors registered on the extension later are this App's too.
        streamflow_app.actors = self.actors
        app.extensions[EXTENSION] = streamflow_app
        app.cli.add_command(commands)

    @property
    def app(self) -> App:
        """The current Flask application's App.

        Raises:
            RuntimeError: outside an application context, or ``init_app`` was not
                called for the current application.
        """
        return current_streamflow_app()

    def actor(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Register an actor (``@sf.actor`` or ``@sf.actor(queue="io", ...)``: the
        options of ``App.actor``).

        Raises:
            TypeError: an option ``App.actor`` does not take.
        """
        unknown = sorted(set(options) - set(_ACTOR_DEFAULTS))
        if unknown:
            raise TypeError(f"unknown actor options {unknown}: expected {sorted(_ACTOR_DEFAULTS)}")
        chosen = {**_ACTOR_DEFAULTS, **options}
        name, throws, retry_when = (chosen.pop(k) for k in ("actor_name", "throws", "retry_when"))
        register = registrar(self, self.actors, actor_options(**chosen), name, throws, retry_when)
        return register(fn) if fn is not None else register

    def submit(self, canvas: Canvas, **options: Any) -> WorkflowHandle[Any]:
        """``submit`` on the current application's App."""
        return self.app.submit(canvas, **options)

    async def submit_async(self, canvas: Canvas, **options: Any) -> AsyncWorkflowHandle[Any]:
        """``submit_async`` on the current application's App."""
        return await self.app.submit_async(canvas, **options)


def current_streamflow_app() -> App:
    """The current Flask application's App (see ``Streamflow.app``)."""
    if not has_app_context():
        raise RuntimeError(
            "no Flask application context: submit in a request or a CLI command, or "
            "within `with flask_app.app_context():`"
        )
    found = current_app.extensions.get(EXTENSION)
    if not isinstance(found, App):
        raise RuntimeError(
            f"Flask application {current_app.name!r} has no streamflow App: call "
            "Streamflow.init_app(flask_app) in its factory"
        )
    return found


def __getattr__(name: str) -> Any:
    # ``streamflow worker`` loads its App by ``module:attribute``: here, the App of the
    # application whose context the ``flask streamflow worker`` command runs in.
    if name == "streamflow_app":
        return current_streamflow_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


commands = AppGroup("streamflow", help="streamflow's commands for this application.")


@commands.command(
    "worker",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    help="Run a worker for this application's App, with the options of `streamflow "
    "worker` (--help lists them).",
)
@click.argument("worker_args", nargs=-1, type=click.UNPROCESSED)
def worker_command(worker_args: Sequence[str]) -> None:
    status = run_worker(SPEC, worker_args)
    if status:
        raise SystemExit(status)
