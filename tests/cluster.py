"""A local Redis Cluster for tests: masters (and replicas) on free loopback ports, made
with ``redis-server --cluster-enabled yes`` and ``redis-cli --cluster create``, in a
directory of its own, stopped and removed at the end."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

HOST = "127.0.0.1"


def _free_port() -> int:
    """A port free on loopback whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind((HOST, port + 10000))
            except OSError:
                continue
        return port


class LocalCluster:
    """``masters`` masters, each with ``replicas`` replicas.

    Args:
        binary: the server binary (``redis-server``, or valkey's).
        masters: how many masters share the 16,384 slots.
        replicas: replicas per master.
    """

    def __init__(self, binary: str, masters: int = 3, replicas: int = 0) -> None:
        self.binary = binary
        self.directory = Path(tempfile.mkdtemp(prefix="streamflow-cluster-"))
        self.ports = [_free_port() for _ in range(masters * (1 + replicas))]
        self.replicas = replicas
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return [(HOST, port) for port in self.ports]

    @property
    def url(self) -> str:
        """``redis+cluster://`` and every node, the form an App takes."""
        return "redis+cluster://" + ",".join(f"{HOST}:{port}" for port in self.ports)

    def start(self) -> LocalCluster:
        for port in self.ports:
            self.processes.append(self._server(port))
        for port in self.ports:
            _wait_for(lambda port=port: redis.Redis(HOST, port).ping(), f"node {port}")
        cli = shutil.which("redis-cli") or "redis-cli"
        create = [cli, "--cluster", "create", *(f"{HOST}:{port}" for port in self.ports)]
        create += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=60)
        for port in self.ports:
            _wait_for(lambda port=port: _cluster_ok(port), f"cluster state on {port}")
        return self

    def _server(self, port: int) -> subprocess.Popen[bytes]:
        node = self.directory / str(port)
        node.mkdir()
        command = [self.binary, "--port", str(port), "--bind", HOST, "--dir", str(node)]
        command += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        command += ["--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no"]
        command += ["--stream-node-max-bytes", "512"]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_ok(port: int) -> bool:
    info = redis.Redis(HOST, port).execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text


def _wait_for(check: Callable[[], object], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {timeout_s:.0f} s")
        time.sleep(0.05)
