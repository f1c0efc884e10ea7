"""The web dashboard (``streamflow web``, the extra ``streamflow[web]``): the workflows,
one workflow's DAG and events, dead letters, workers and queues, with a JSON API under
``/api`` behind every page. ``create_app(app)`` builds the ASGI application."""

from __future__ import annotations

from streamflow.web.app import LOOPBACK_HOSTS, create_app

__all__ = ["LOOPBACK_HOSTS", "create_app"]
