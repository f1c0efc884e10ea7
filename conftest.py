"""
Shared pytest setup for ``tests/`` and ``proptests/``: hypothesis profiles and a real Redis.

The session starts its own server (``redis-server`` on PATH, else the embedded
valkey binary) unless ``STREAMFLOW_TEST_REDIS_URL`` points at one. A missing
server is a failure, never a skip. With ``STREAMFLOW_TEST_CLUSTER=1`` the session's
Redis is a local Redis Cluster of 3 masters instead: every test that takes ``r``,
``app`` or ``redis_url`` runs on it.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import structlog
from hypothesis import HealthCheck, settings

from streamflow import App
from streamflow.store.cluster import connect
from streamflow.store.embedded import EmbeddedRedis, find_server_binary
from tests.cluster import ON_CLUSTER, LocalCluster

settings.register_profile(
    "ci",
    derandomize=True,
    print_blob=True,
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "integration: talks to a real server through the library's Redis code; "
        "scripts/test runs these again on the lowest supported versions, and on Python "
        "3.13 with the embedded Valkey",
    )
    config.addinivalue_line(
        "markers",
        "cluster_faults: a cluster moved or failed over under a run (slow): run once, in "
        "the main run of scripts/test, not again in its other settings",
    )
    config.addinivalue_line(
        "markers",
        "once: a slow integration test of the worker's own logic (processes killed or "
        "paused, retention sweeps) rather than of what differs between versions: run in "
        "the main run of scripts/test, not again in its other settings",
    )


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """
    The server binary private test servers run.

    ``STREAMFLOW_TEST_SERVER=redis`` (the default) takes ``redis-server`` from PATH, else
    the embedded valkey; ``STREAMFLOW_TEST_SERVER=valkey`` always takes the embedded one.
    """
    server = os.getenv("STREAMFLOW_TEST_SERVER", "redis")
    if server == "valkey":
        return find_server_binary()
    if server != "redis":
        raise pytest.UsageError(
            f"STREAMFLOW_TEST_SERVER must be 'redis' or 'valkey' (got {server!r})"
        )
    return shutil.which("redis-server") or find_server_binary()


@pytest.fixture(scope="session")
def redis_url(redis_binary: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """
    URL of the session's Redis: ``STREAMFLOW_TEST_REDIS_URL``, the session's cluster
    (``STREAMFLOW_TEST_CLUSTER=1``) or a private server.
    """
    url = os.getenv("STREAMFLOW_TEST_REDIS_URL")
    if url:
        yield url
        return
    if ON_CLUSTER:
        yield request.getfixturevalue("redis_cluster").url
        return
    # No fsync per write: about 3x faster, and tests that need durability run
    # their own EmbeddedRedis.
    with EmbeddedRedis(binary=redis_binary, appendfsync="everysec") as server:
        yield server.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """
    A client to the session's Redis, flushed before the test.
    """
    client: Any = connect(redis_url)  # a RedisCluster for a cluster's URL
    client.flushall()  # every master of a cluster
    try:
        yield client
    finally:
        client.close()


# Library logs go to stderr in tests (never stdout: CI reads pytest's last lines there),
# at WARNING unless STREAMFLOW_TEST_LOG_LEVEL says otherwise.
structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(
        getattr(logging, os.getenv("STREAMFLOW_TEST_LOG_LEVEL", "WARNING"))
    ),
    logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
)


@pytest.fixture
def app(r: redis.Redis, redis_url: str) -> Iterator[App]:
    """An App on the session's Redis (flushed before the test)."""
    application = App(redis_url)
    yield application
    application.close()


@pytest.fixture(scope="session")
def redis_cluster(redis_binary: str) -> Iterator[LocalCluster]:
    """A local Redis Cluster of 3 masters on free ports, for the session (made at the
    first test that asks for it)."""
    with LocalCluster(redis_binary, masters=3) as cluster:
        yield cluster
