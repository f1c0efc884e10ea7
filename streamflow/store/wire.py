"""A connection held by one caller at a time, sending pipelines without redis-py's
command layer.

The worker's hot paths (the coalesced script pipeline, the fetch loop's XREADGROUP)
send many commands per second whose replies need no conversion; redis-py's
``Pipeline`` spends more CPU per command on bookkeeping (a pooled connection taken and
returned, response callbacks, argument filters) than on the protocol itself. ``Wire``
keeps one connection from the client's pool, packs the commands with hiredis, reads the
raw replies, and on a broken connection retries as the connection is configured to
(``Retry``) and reconnects, as ``Pipeline`` does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import redis
from hiredis import pack_command

from streamflow.model import codec
from streamflow.model.schema import MESSAGE_FIELD

_MESSAGE = MESSAGE_FIELD.encode()


class Wire:
    """One connection of ``client``'s pool, for one caller at a time.

    Args:
        client: whose pool, serializer and retry policy are used.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._conn: Any = None  # a redis.connection.Connection (loosely typed upstream)
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def execute(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send the commands in one write and read their replies in order.

        An error reply is returned in place as its ``redis.ResponseError``.

        Raises:
            redis.ConnectionError, redis.TimeoutError: after the connection's retries
                (the next call reconnects).
        """
        with self._lock:
            # As Pipeline does: the connection's retry policy (none unless configured);
            # a broken connection is dropped, and the next attempt takes a new one.
            retry = self._connection().retry
            result: list[Any] = retry.call_with_retry(lambda: self._attempt(commands), self._broken)
            return result

    def socket_timeout_s(self) -> float | None:
        """How long a reply may take on this connection before it fails as a timeout
        (None: no limit; redis-py 8's default is 5 s, a URL's ``socket_timeout`` sets it).
        Read from a connection made but not connected: Redis may not be up yet."""
        pool = self.client.connection_pool
        timeout: float | None = pool.connection_class(**pool.connection_kwargs).socket_timeout
        return timeout

    def close(self) -> None:
        """Give the connection back to the pool."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                self.client.connection_pool.release(conn)

    def _attempt(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        conn = self._connection()
        try:
            packed = b"".join([pack_command(tuple(command)) for command in commands])
        except TypeError as exc:
            raise redis.DataError(str(exc)) from exc
        try:
            conn.send_packed_command([packed])
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            # Cut off between sending and reading (anything but a reply): the replies
            # left unread would be the next caller's. Start over on a new connection.
            self._broken(None)
            raise
        return replies

    def _connection(self) -> Any:
        if self._pid != os.getpid():  # forked: the parent's socket is not ours
            self._conn, self._pid = None, os.getpid()
        if self._conn is None:
            self._conn = self.client.connection_pool.get_connection()
        return self._conn

    def _broken(self, error: Exception | None) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
            self.client.connection_pool.release(conn)


def message_of(fields: Any) -> bytes | None:
    """The message a stream entry carries, as a reply gives its fields (a flat
    ``[name, value, ...]`` list or a map): its ``m`` field; for an entry without one, all
    its fields packed, so that a dead letter keeps them; None for an entry with no fields
    (deleted)."""
    if not fields:
        return None
    if isinstance(fields, dict):
        pairs = list(fields.items())
    else:
        pairs = list(zip(fields[::2], fields[1::2], strict=False))
    for name, value in pairs:
        if name == _MESSAGE:
            return bytes(value)
    return codec.pack(dict(pairs))


def stream_messages(reply: Any) -> list[tuple[str, str, bytes]]:
    """(stream key, message id, field ``m``) of each message in an XREAD[GROUP] reply.

    A message deleted while pending comes with no fields: its ``m`` is empty."""
    if not reply:
        return []
    streams = reply.items() if isinstance(reply, dict) else reply  # RESP3 answers a map
    out: list[tuple[str, str, bytes]] = []
    for key, entries in streams:
        name = key.decode()
        for msg_id, fields in entries:
            out.append((name, msg_id.decode(), message_of(fields) or b""))
    return out
