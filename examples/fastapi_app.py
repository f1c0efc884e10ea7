"""A FastAPI service that submits workflows and awaits their results, never blocking
its event loop: the App is opened with the service and closed with it
(``streamflow.contrib.asgi.lifespan``).

    uvicorn examples.fastapi_app:api                       # the web service
    streamflow worker examples.fastapi_app:app             # a worker (same actors)

Both read the Redis URL from STREAMFLOW_REDIS_URL. For development, one process can do
both: ``FastAPI(lifespan=lifespan(app, worker=True))`` runs a worker in the service.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException

from streamflow import App, Chain, ResultFailure, ResultMissing, ResultTimeout
from streamflow.contrib.asgi import lifespan

app = App()


@app.actor
def add(a: int, b: int) -> int:
    return a + b


@app.actor
def double(x: int) -> int:
    return 2 * x


api = FastAPI(lifespan=lifespan(app))


@api.post("/sums", status_code=202)
async def start(a: int, b: int) -> dict[str, str]:
    """Start (a + b) * 2 as a workflow; answers at once with its id."""
    handle = await app.submit_async(Chain(add.message(a, b), double.piped()))
    return {"id": handle.id}


@api.get("/sums/{workflow_id}")
async def result(workflow_id: str, wait: float = 10.0) -> dict[str, Any]:
    """The workflow's result, waiting up to ``wait`` seconds for it to end."""
    try:
        value = await app.handle_async(workflow_id).result(timeout=wait)
    except ResultTimeout:
        raise HTTPException(status_code=408, detail="not finished yet") from None
    except ResultMissing as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except ResultFailure as exc:
        raise HTTPException(status_code=500, detail=str(exc)) from None
    return {"id": workflow_id, "result": value}
