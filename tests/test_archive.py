"""Archives of finished workflows: layout 2 (compact), layout 1 still read."""

from __future__ import annotations

import pytest
import redis

from streamflow import App, Chain, Group, codec
from streamflow.errors import DecodeError
from streamflow.history import decode_archive, encode_archive, read_raw
from tests.waiting import wait_until

ENTRIES = [
    ("1795658926012-0", 1, b"\x10\x92\x08\x04"),
    ("1795658926012-1", 2, b"ab"),
    ("1795658926034-7", 3, b""),
]


def test_layout_2_round_trips_and_is_smaller_than_layout_1() -> None:
    assert decode_archive(encode_archive(ENTRIES)) == ENTRIES
    assert decode_archive(encode_archive([])) == []
    layout_1 = codec.encode([[sid, seq, payload] for sid, seq, payload in ENTRIES])
    assert decode_archive(layout_1) == ENTRIES
    assert len(encode_archive(ENTRIES)) < len(layout_1) - 30


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], [[1, 2]], "x"])
def test_anything_else_is_refused(value: object) -> None:
    with pytest.raises(DecodeError, match="not a workflow archive"):
        decode_archive(codec.encode(value))


def test_script_and_shell_archives_read_back_as_the_log_was(app: App, r: redis.Redis) -> None:
    @app.actor
    def one(*piped: object) -> int:
        return 1

    with app.worker(concurrency=4):
        short = app.submit(Chain(one.message(), one.message()))  # archived by the script
        long = app.submit(Group(*(one.message() for _ in range(300))))  # by the shell
        for handle in (short, long):
            handle.result(timeout=30)
            wait_until(lambda h=handle: read_raw(r, app.keys, h.id)[1], 10, message="archive")
    for handle in (short, long):
        raw, _ = read_raw(r, app.keys, handle.id)
        assert [seq for _, seq, _ in raw] == list(range(1, len(raw) + 1))
        ids = [tuple(map(int, sid.split("-"))) for sid, _, _ in raw]
        assert ids == sorted(set(ids))
        assert [e.event.code for e in handle.history()][-1] == 8  # WorkflowCompleted
