"""
Unit tests of ``streamflow.model.codec``: framing, compression, and its two errors.
"""

from __future__ import annotations

import os

import lz4.frame
import msgpack
import pytest

from streamflow.model import codec
from streamflow.model.errors import DecodeError, EncodeError, StreamflowError

PLAIN = codec.VERSION << 4
LZ4 = (codec.VERSION << 4) | 0x01


@pytest.mark.parametrize(
    "value",
    [
        0,
        1,
        -1,
        2**31,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        1.5,
        -0.0,
        float("inf"),
        "",
        "héllo ✓",
        b"",
        b"\x00\xff" * 10,
        None,
        True,
        False,
        [],
        {},
        [1, [2, [3, []]], {"a": None}],
        {"k": {"nested": [b"x", 2.5, "y"]}, 3: "int key"},
    ],
    ids=repr,
)
def test_plain_data_round_trips(value: object) -> None:
    assert codec.decode(codec.encode(value)) == value


def test_round_trip_keeps_types() -> None:
    decoded = codec.decode(codec.encode([True, 1, 1.0, "1", b"1"]))

    assert [type(v) for v in decoded] == [bool, int, float, str, bytes]


def test_tuples_come_back_as_lists() -> None:
    assert codec.decode(codec.encode((1, (2, 3)))) == [1, [2, 3]]


def test_header_high_nibble_is_the_version() -> None:
    data = codec.encode({"a": 1})

    assert data[0] >> 4 == codec.VERSION == 1
    assert data[0] == PLAIN
    assert data[1:] == msgpack.packb({"a": 1}, use_bin_type=True)


def test_small_payload_is_never_compressed() -> None:
    value = "a" * (codec.COMPRESS_THRESHOLD - 10)  # very compressible, but small

    assert codec.encode(value)[0] == PLAIN


def test_large_compressible_payload_gets_the_lz4_flag() -> None:
    value = ["the same text again"] * 200
    body = codec.pack(value)
    assert len(body) >= codec.COMPRESS_THRESHOLD

    data = codec.encode(value)

    assert data[0] == LZ4
    assert len(data) < len(body)
    assert lz4.frame.decompress(data[1:]) == body
    assert codec.decode(data) == value


def test_payload_at_exactly_the_threshold_is_compressed() -> None:
    # A bin 16 header is 3 bytes; make the msgpack body exactly COMPRESS_THRESHOLD long.
    value = b"\x00" * (codec.COMPRESS_THRESHOLD - 3)
    assert len(codec.pack(value)) == codec.COMPRESS_THRESHOLD

    data = codec.encode(value)

    assert data[0] == LZ4
    assert codec.decode(data) == value


def test_large_incompressible_payload_stays_plain() -> None:
    value = os.urandom(4096)

    data = codec.encode(value)

    assert data[0] == PLAIN
    assert data[1:] == codec.pack(value)
    assert codec.decode(data) == value


def test_pack_and_unpack_have_no_header() -> None:
    assert codec.pack(5) == b"\x05"
    assert codec.unpack(codec.pack({1: [b"x"]})) == {1: [b"x"]}


def test_encode_error_names_path_and_type() -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode([1, {"k": object()}])

    assert info.value.path == "value[1]['k']"
    assert info.value.type_name == "object"
    assert str(info.value) == "value[1]['k']: object of type object cannot be encoded"


def test_encode_error_path_starts_with_what() -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode({"a": [0, 0, {1, 2}]}, what="result")

    assert info.value.path == "result['a'][2]"
    assert info.value.type_name == "set"


def test_encode_error_at_top_level() -> None:
    with pytest.raises(EncodeError, match=r"^value: object of type complex cannot be encoded$"):
        codec.encode(1j)


def test_encode_error_for_an_unencodable_key() -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode({frozenset(): 1})

    assert info.value.path == "value key frozenset()"
    assert info.value.type_name == "frozenset"


def test_encode_error_for_an_int_out_of_range() -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode([2**64])

    assert (info.value.path, info.value.type_name) == ("value[0]", "int")


def test_encode_error_is_a_type_error_and_a_streamflow_error() -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode(object())

    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, StreamflowError)


def _decode_error(data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, StreamflowError)
    assert info.value.data is data
    return info.value


def test_decode_error_for_empty_bytes() -> None:
    assert "empty" in str(_decode_error(b""))


@pytest.mark.parametrize("version", [0, 2, 15])
def test_decode_error_for_an_unknown_version(version: int) -> None:
    data = bytes([version << 4]) + codec.pack(1)

    error = _decode_error(data)

    assert str(error) == f"unknown codec version {version} (expected 1)"


def test_decode_error_for_a_corrupt_lz4_frame() -> None:
    data = codec.encode(["x" * 40] * 100)
    assert data[0] == LZ4
    corrupt = data[:1] + b"\x00\x00\x00\x00" + data[5:]  # smash the frame's magic number

    assert "undecodable payload" in str(_decode_error(corrupt))


def test_decode_error_for_a_truncated_lz4_frame() -> None:
    data = codec.encode(["x" * 40] * 100)
    assert data[0] == LZ4

    _decode_error(data[:-4])


def test_decode_error_for_an_lz4_flag_on_plain_msgpack() -> None:
    _decode_error(bytes([LZ4]) + codec.pack([1, 2, 3]))


def test_decode_error_for_truncated_msgpack() -> None:
    data = codec.encode(["abc", 1, 2, 3])

    assert "undecodable payload" in str(_decode_error(data[:-1]))


def test_decode_error_for_trailing_bytes() -> None:
    _decode_error(codec.encode(1) + b"\x01")


def test_decode_error_keeps_bytes_intact() -> None:
    data = bytes([PLAIN, 0xC1])  # 0xc1 is never used by msgpack

    error = _decode_error(data)

    assert error.data == bytes([PLAIN, 0xC1])
    assert error.__cause__ is not None


def test_user_data_that_cannot_be_read_back_is_refused() -> None:
    # msgpack writes tuple keys as arrays, which come back unhashable: user data goes
    # through encode_checked, which refuses it with the path instead.
    with pytest.raises(EncodeError, match=r"result key \(1, 2\): object of type tuple"):
        codec.encode_checked({(1, 2): "x"}, what="result")
    with pytest.raises(EncodeError, match=r"args\[0\]\['a'\] key \(1,\)"):
        codec.encode_checked([{"a": {(1,): 2}}], what="args")
    assert codec.decode(codec.encode_checked({"ok": [1, (2, 3)]}, what="x")) == {"ok": [1, [2, 3]]}


def test_decode_error_for_unknown_flag_bits() -> None:
    data = bytes([PLAIN | 0x04]) + codec.pack(5)

    with pytest.raises(DecodeError):
        codec.decode(data)


def test_script_written_payloads_decode_strings_as_bytes() -> None:
    # Flag 0x02: written by a Lua script (cmsgpack), whose strings are bytes.
    data = bytes([(codec.VERSION << 4) | 0x02]) + codec.pack(["1-0", 1, b"\x00e"])
    assert codec.decode(data) == [b"1-0", 1, b"\x00e"]
