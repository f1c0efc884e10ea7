"""A failed attempt's exception is let go once its failure is recorded, for async actors
as for sync ones: nothing the worker keeps (the finished future, the job) holds it in a
reference cycle until the next garbage collection."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from streamflow import App, ResultFailure

pytestmark = pytest.mark.integration


class Tracked(Exception):
    """An exception whose instances are watched (weakly) from their creation."""

    made: list[weakref.ref[Tracked]] = []

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        Tracked.made.append(weakref.ref(self))


@pytest.fixture
def no_collector() -> Iterator[None]:
    Tracked.made.clear()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_failed_attempts_exception_dies_with_its_last_reference(
    app: App, no_collector: None, kind: str
) -> None:
    if kind == "async":

        @app.actor(max_retries=1, min_backoff=0.01, actor_name="fails")
        async def fails_async() -> None:
            raise Tracked("attempt failed")

    else:

        @app.actor(max_retries=1, min_backoff=0.01, actor_name="fails")
        def fails_sync() -> None:
            raise Tracked("attempt failed")

    with app.worker(concurrency=2):
        handle = app.submit(app.actors["fails"].message())
        with pytest.raises(ResultFailure, match="attempt failed"):
            handle.get_result(block=True, timeout=30)

    assert len(Tracked.made) == 2  # both attempts failed
    assert [ref for ref in Tracked.made if ref() is not None] == []
