"""A local Redis Cluster for tests: masters (and replicas) on free loopback ports, made
with ``redis-server --cluster-enabled yes`` and ``redis-cli --cluster create``, in a
directory of its own, stopped and removed at the end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

HOST = "127.0.0.1"
ON_CLUSTER = os.getenv("STREAMFLOW_TEST_CLUSTER") == "1"
"""The suite runs on a local Redis Cluster (``STREAMFLOW_TEST_CLUSTER=1``)."""


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
        if len(self.ports) < 3:
            self._assign()  # redis-cli --cluster create wants 3 masters at least
        else:
            cli = shutil.which("redis-cli") or "redis-cli"
            create = [cli, "--cluster", "create", *(f"{HOST}:{port}" for port in self.ports)]
            create += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
            subprocess.run(create, check=True, capture_output=True, timeout=60)
        for port in self.ports:
            _wait_for(lambda port=port: _cluster_ok(port), f"cluster state on {port}")
        if self.replicas:
            for port in self.ports:
                _wait_for(lambda port=port: self._synced(port), f"replicas of {port}")
        return self

    def _assign(self) -> None:
        """One or two masters without replicas: even slot ranges, then a handshake."""
        if self.replicas:
            raise ValueError("a cluster with replicas needs 3 masters at least")
        count = len(self.ports)
        for i, port in enumerate(self.ports):
            first, last = 16384 * i // count, 16384 * (i + 1) // count - 1
            redis.Redis(HOST, port).execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for port in self.ports[1:]:
            redis.Redis(HOST, port).execute_command("CLUSTER", "MEET", HOST, self.ports[0])

    def _synced(self, port: int) -> bool:
        """Whether the node on ``port`` is a replica, or a master whose replicas are all
        online (their first sync done)."""
        info = redis.Redis(HOST, port).info("replication")
        if info["role"] != "master":
            return True
        online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        return len(online) == self.replicas and all(v["state"] == "online" for v in online)

    def _server(self, port: int, fresh: bool = True) -> subprocess.Popen[bytes]:
        node = self.directory / str(port)
        node.mkdir(exist_ok=not fresh)
        command = [self.binary, "--port", str(port), "--bind", HOST, "--dir", str(node)]
        command += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        command += ["--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no"]
        command += ["--stream-node-max-bytes", "512"]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self, port: int) -> None:
        """SIGKILL the server on ``port`` (its data and cluster config stay on disk)."""
        process = self.processes[self.ports.index(port)]
        process.kill()
        process.wait()

    def restart(self, port: int) -> None:
        """Start the server on ``port`` again: it rejoins the cluster (a former master
        whose replica took over comes back as that replica's replica)."""
        self.processes[self.ports.index(port)] = self._server(port, fresh=False)
        _wait_for(lambda: redis.Redis(HOST, port).ping(), f"node {port}")

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


def node_id(port: int) -> str:
    """The cluster node id of the server on ``port``."""
    return str(redis.Redis(HOST, port).execute_command("CLUSTER", "MYID").decode())


def owner_of(ports: list[int], slot: int) -> int:
    """The port of the master that owns ``slot`` (as the first node sees it)."""
    slots = redis.Redis(HOST, ports[0]).execute_command("CLUSTER", "SLOTS")
    for start, end, master, *_ in slots:
        if int(start) <= slot <= int(end):
            return int(master[1])
    raise LookupError(f"slot {slot} has no master")


def move_slot(ports: list[int], slot: int, to_port: int, pause_s: float = 0.0) -> int:
    """Move ``slot`` to the master on ``to_port`` the way ``redis-cli --cluster reshard``
    does (IMPORTING/MIGRATING, MIGRATE key by key, then SETSLOT NODE on every master),
    waiting ``pause_s`` after each key so that clients meet the slot half moved
    (ASK, TRYAGAIN); returns how many keys moved."""
    from_port = owner_of(ports, slot)
    source, target = redis.Redis(HOST, from_port), redis.Redis(HOST, to_port)
    target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(from_port))
    source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(to_port))
    moved = 0
    while True:
        keys = source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1)
        if not keys:
            break
        source.execute_command("MIGRATE", HOST, to_port, "", 0, 5000, "KEYS", *keys)
        moved += len(keys)
        time.sleep(pause_s)
    for port in ports:
        redis.Redis(HOST, port).execute_command(
            "CLUSTER", "SETSLOT", slot, "NODE", node_id(to_port)
        )
    return moved
