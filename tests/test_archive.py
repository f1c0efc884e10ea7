"""Archives of finished workflows: a summary for listings, then layout 2 (compact);
layout 1 and archives without a summary are still read."""

from __future__ import annotations

import pytest
import redis

from streamflow import App, Chain, Group
from streamflow.model import codec
from streamflow.model.archive import (
    SUMMARY,
    ArchiveSummary,
    archive_summary,
    decode_archive,
    encode_archive,
)
from streamflow.model.errors import DecodeError
from streamflow.store.log import read_raw
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

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


def test_a_summary_parses_and_an_unknown_status_is_not_one() -> None:
    head = SUMMARY.pack(0x53, 2, 1, 7, 10, 4)
    assert archive_summary(head) == ArchiveSummary("failed", (1 << 32) + 7, (1 << 32) + 17, 4)
    assert decode_archive(head + encode_archive(ENTRIES)) == ENTRIES
    assert archive_summary(SUMMARY.pack(0x53, 9, 0, 5, 1, 3)) is None
    assert archive_summary(head[:-1]) is None
    assert archive_summary(encode_archive(ENTRIES)) is None


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


def test_an_archive_starts_with_the_summary_its_listing_line_moved_into(
    app: App, r: redis.Redis
) -> None:
    @app.actor
    def one(*piped: object) -> int:
        return 1

    @app.actor
    def bad() -> None:
        raise ValueError("boom")

    with app.worker(concurrency=4):
        short = app.submit(Chain(one.message(), one.message()))  # archived by the script
        long = app.submit(Group(*(one.message() for _ in range(300))))  # by the shell
        failed = app.submit(bad.message())
        for handle in (short, long, failed):
            handle.get_result(block=True, timeout=30, raise_on_error=False)
            wait_until(lambda h=handle: read_raw(r, app.keys, h.id)[1], 10, message="archive")
    assert r.hlen(app.keys.ended(0)) == 0  # every line moved into its archive
    listed = {s.workflow_id: s for s in app.workflows()}
    for handle, status in ((short, "completed"), (long, "completed"), (failed, "failed")):
        history = handle.history()
        (end,) = [e for e in history if e.event.code in (8, 9, 10)]
        summary = archive_summary(r.getrange(app.keys.archive(handle.id), 0, SUMMARY.size - 1))
        assert summary == ArchiveSummary(
            status, history[0].time_ms, summary.ended_ms if summary else 0, end.seq
        )
        assert summary is not None and 0 <= summary.ended_ms - end.time_ms <= 5
        line = listed[handle.id]
        assert (line.status, line.submitted_ms, line.ended_ms, line.events) == (
            summary.status,
            summary.submitted_ms,
            summary.ended_ms,
            summary.events,
        )


def test_an_archive_without_a_summary_is_listed_from_its_events(app: App, r: redis.Redis) -> None:
    @app.actor
    def one(*piped: object) -> int:
        return 1

    with app.worker(concurrency=2):
        handle = app.submit(Chain(one.message(), one.message()))
        handle.result(timeout=30)
        wait_until(lambda: read_raw(r, app.keys, handle.id)[1], 10, message="archive")
    key = app.keys.archive(handle.id)
    with_summary = r.get(key)
    assert with_summary is not None and archive_summary(with_summary) is not None
    (before,) = app.workflows()
    r.set(key, with_summary[SUMMARY.size :])  # as written before summaries existed
    assert archive_summary(r.get(key) or b"") is None
    (after,) = app.workflows()
    assert (after.status, after.submitted_ms, after.events) == (
        before.status,
        before.submitted_ms,
        before.events,
    )
    assert abs(after.ended_ms - before.ended_ms) <= 5  # type: ignore[operator]
    assert [e.event for e in handle.history()][-1].code == 8
