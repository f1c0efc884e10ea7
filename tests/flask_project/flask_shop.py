"""A minimal Flask application factory using streamflow.contrib.flask.

flask --app flask_shop:create_app streamflow worker --queues default
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from streamflow import Chain
from streamflow.contrib.flask import Streamflow

sf = Streamflow()


@sf.actor
def square(x: int) -> int:
    return x * x


@sf.actor(queue="default", max_retries=1)
def plus_one(x: int) -> int:
    return x + 1


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_prefixed_env()  # FLASK_STREAMFLOW_URL, FLASK_STREAMFLOW_PREFIX
    app.config.update(config or {})
    sf.init_app(app)

    @app.post("/squares")
    def start() -> dict[str, str]:
        x = int(request.form["x"])
        handle = sf.submit(Chain(square.message(x), plus_one.message()))
        return {"id": handle.id}

    @app.get("/squares/<workflow_id>")
    def result(workflow_id: str) -> dict[str, Any]:
        return {"result": sf.app.handle(workflow_id).result(timeout=30)}

    return app
