"""Workers pinned to shards (``Worker(shards=...)``, ``streamflow worker --shards``):
each serves its own shards only, and a wrong choice is refused, naming it."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from streamflow import App, Chain
from streamflow.cli.operate import shard_ranges
from streamflow.model.events import TaskStarted
from streamflow.model.messages import shard_of
from streamflow.runtime.worker import pinned
from streamflow.store.cluster import connect
from tests.cluster import LocalCluster


@pytest.mark.parametrize(
    ("text", "shards"),
    [("3", [3]), ("0-3", [0, 1, 2, 3]), ("0,3,8-9", [0, 3, 8, 9]), (" 1 , 2", [1, 2])],
)
def test_shard_ranges_on_the_command_line(text: str, shards: list[int]) -> None:
    assert shard_ranges(text) == shards


@pytest.mark.parametrize("text", ["", "a", "1-", "-2", "1-x", "1;2", "7-3"])
def test_a_wrong_shard_range_is_named(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text).replace("\\", "\\\\")):
        shard_ranges(text)


def test_pinned_shards_are_checked_against_the_count() -> None:
    assert pinned(None, 3) == (0, 1, 2)
    assert pinned([2, 0, 2], 3) == (0, 2)
    for wrong in ([3], [-1], []):
        with pytest.raises(ValueError, match=r"some of 0\.\.2 \(the App has 3\)"):
            pinned(wrong, 3)


@pytest.fixture
def capp(redis_cluster: LocalCluster) -> Iterator[App]:
    client = connect(redis_cluster.url)
    client.flushall()
    client.close()
    application = App(redis_cluster.url)
    yield application
    application.close()


@pytest.mark.integration
def test_two_workers_pinned_to_halves_of_a_cluster_serve_their_own(capp: App) -> None:
    @capp.actor
    def step(x: int, *piped: int) -> int:
        return x + sum(piped)

    half = capp.shards // 2
    first = capp.worker(concurrency=4, shards=range(half), consumer="first")
    second = capp.worker(concurrency=4, shards=range(half, capp.shards), consumer="second")
    with first, second:
        handles = [capp.submit(Chain(step.message(1), step.message(2))) for _ in range(96)]
        assert capp.results(handles, timeout=60) == [3] * 96
    for handle in handles:
        workers = {e.event.worker for e in handle.history() if isinstance(e.event, TaskStarted)}
        assert workers == {"first" if shard_of(handle.id) < half else "second"}
