"""Bytes on the wire and in the log: a one-byte header, msgpack, and lz4 for larger payloads.

Header byte: high nibble = codec version (1), bit 0 = payload is an lz4 frame, bit 1 =
written by a Lua script (``cmsgpack``, which writes every string as a msgpack str: they
decode as bytes).
Payloads under ``COMPRESS_THRESHOLD`` bytes are never compressed, and a compressed
payload is kept only when it is smaller: an lz4 frame costs ~15 bytes of framing,
which small msgpack payloads never win back (measured on lists, dicts and text of
32 B - 4 KiB: below 512 B the frame was always larger or within a few bytes).
"""

from __future__ import annotations

from typing import Any

import lz4.frame
import msgpack

from streamflow.model.errors import DecodeError, EncodeError

VERSION = 1
_FLAG_LZ4 = 0x01
_FLAG_SCRIPT = 0x02
COMPRESS_THRESHOLD = 512
_HEADER_PLAIN = bytes([VERSION << 4])
_HEADER_LZ4 = bytes([(VERSION << 4) | _FLAG_LZ4])


def pack(value: Any) -> bytes:
    """msgpack without the header (for parts embedded in a larger structure)."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def unpack(data: bytes) -> Any:
    """Inverse of ``pack``."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def encode(value: Any, *, what: str = "value") -> bytes:
    """Encode ``value`` with header, compressing when it pays.

    Raises:
        EncodeError: naming the path inside ``value`` (prefixed by ``what``) that cannot be encoded.
    """
    try:
        body = pack(value)
    except (TypeError, ValueError, OverflowError):
        path, type_name = find_unencodable(value, what)
        raise EncodeError(path, type_name) from None
    if len(body) >= COMPRESS_THRESHOLD:
        compressed: bytes = lz4.frame.compress(body, store_size=False, content_checksum=True)
        if len(compressed) < len(body):
            return _HEADER_LZ4 + compressed
    return _HEADER_PLAIN + body


def decode(data: bytes) -> Any:
    """Decode bytes produced by ``encode``.

    Raises:
        DecodeError: for an unknown version, a bad frame or bad msgpack; ``data`` is kept intact.
    """
    if not data:
        raise DecodeError("empty payload", data)
    header = data[0]
    if header >> 4 != VERSION:
        raise DecodeError(f"unknown codec version {header >> 4} (expected {VERSION})", data)
    if header & ~(_FLAG_LZ4 | _FLAG_SCRIPT) & 0x0F:
        raise DecodeError(f"unknown codec flags {header & 0x0F:#x}", data)
    body = data[1:]
    try:
        if header & _FLAG_LZ4:
            body = lz4.frame.decompress(body)
        if header & _FLAG_SCRIPT:
            return msgpack.unpackb(body, raw=True, strict_map_key=False)
        return unpack(body)
    except Exception as exc:  # lz4 and msgpack raise many unrelated types
        raise DecodeError(f"undecodable payload: {exc}", data) from exc


def encode_checked(value: Any, *, what: str) -> bytes:
    """``encode`` for user data, verified by decoding it back.

    msgpack writes some values it cannot read back (a dict with tuple keys comes back
    with unhashable list keys); such a value must fail here, not make a log unreadable.

    Raises:
        EncodeError: naming the path inside ``value`` (prefixed by ``what``).
    """
    data = encode(value, what=what)
    try:
        decode(data)
    except DecodeError:
        path, type_name = find_unencodable(value, what)
        raise EncodeError(path, type_name) from None
    return data


_PLAIN_KEYS = (str, int, float, bytes, bool, type(None))


def find_unencodable(value: Any, path: str) -> tuple[str, str]:
    """Return the path and type name of the first value msgpack cannot carry both ways."""
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _check(item, f"{path}[{i}]")
            if found:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, _PLAIN_KEYS):
                return f"{path} key {key!r}", type(key).__name__
            found = _check(item, f"{path}[{key!r}]")
            if found:
                return found
    return path, type(value).__name__


def _check(value: Any, path: str) -> tuple[str, str] | None:
    try:
        pack(value)
    except (TypeError, ValueError, OverflowError):
        return find_unencodable(value, path)
    if isinstance(value, (list, tuple, dict)):
        found = find_unencodable(value, path)
        if found[0] != path:
            return found
    return None
