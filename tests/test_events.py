"""
Unit tests of ``streamflow.model.events``: encoding, idempotency keys, the cause hole.
"""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

from streamflow.model import codec
from streamflow.model.errors import DecodeError
from streamflow.model.events import (
    BarrierDecremented,
    BarrierReleased,
    ChildStarted,
    Entry,
    Event,
    HistoryWarning,
    SignalReceived,
    TaskEnqueued,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowResumed,
    WorkflowSubmitted,
    decode_event,
    encode_event,
    encode_with_cause_hole,
)

ERROR = {"type": "ValueError", "message": "boom", "traceback": "Traceback ...\n"}

EVENTS: list[Event] = [
    WorkflowSubmitted(
        def_hash="ab" * 16,
        args={0: codec.encode([[1, 2], {}]), 3: codec.encode([[], {"k": "v"}])},
        options={"queue": "fast", "durability": "replicated"},
        engine_version="0.1.0",
    ),
    TaskEnqueued(node=3, attempt=1, cause=2),
    TaskEnqueued(node=3, attempt=2, delay_ms=1500, cause=7),
    TaskStarted(node=3, attempt=1, worker="host:123:w0", msg_id="1700000000000-0", cause=3),
    TaskSucceeded(node=3, attempt=1, result={"total": [1, 2.5, None, b"raw"]}, cause=4),
    TaskSucceeded(node=4, attempt=1, cause=4),
    TaskFailed(node=3, attempt=1, error=ERROR, retry_delay_ms=900, cause=4),
    TaskFailed(node=3, attempt=2, error=ERROR, cause=9),
    BarrierDecremented(barrier=5, source=3, cause=5),
    BarrierReleased(barrier=5, cause=6),
    WorkflowCompleted(cause=10),
    WorkflowFailed(error={**ERROR, "node": 3, "attempt": 2}, cause=10),
    WorkflowCancelled(reason="operator asked", cause=0),
    HistoryWarning(events=10_000, bytes=1_234_567, cause=9_999),
    SignalReceived(name="approved", payload={"by": "ann"}, sender="web"),
    WorkflowResumed(epoch=1, nodes={3: 4, 7: 2}, reason="fixed the bug", by="ann", cause=0),
    ChildStarted(node=2, attempt=1, child="3-c0de0123456789abcdef0123", detached=True, cause=4),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_event_round_trips(event: Event) -> None:
    decoded = decode_event(encode_event(event))

    assert type(decoded) is type(event)
    assert decoded == event


def test_every_event_type_is_covered() -> None:
    def subclasses(cls: type[Event]) -> set[type[Event]]:
        direct = set(cls.__subclasses__())
        return direct.union(*(subclasses(c) for c in direct))

    # Compare names: slots=True dataclasses leave their pre-slots classes behind as subclasses.
    assert {type(e).__name__ for e in EVENTS} == {c.__name__ for c in subclasses(Event)}


def test_event_codes_are_distinct_and_fixed() -> None:
    codes = {type(e).__name__: type(e).code for e in EVENTS}

    # Existing codes keep their meaning forever (old logs must stay readable).
    assert codes == {
        "WorkflowSubmitted": 1,
        "TaskEnqueued": 2,
        "TaskStarted": 3,
        "TaskSucceeded": 4,
        "TaskFailed": 5,
        "BarrierDecremented": 6,
        "BarrierReleased": 7,
        "WorkflowCompleted": 8,
        "WorkflowFailed": 9,
        "WorkflowCancelled": 10,
        "HistoryWarning": 11,
        "SignalReceived": 12,
        "WorkflowResumed": 13,
        "ChildStarted": 14,
    }


def test_encoding_is_code_then_fields_in_order() -> None:
    event = TaskEnqueued(node=3, attempt=2, delay_ms=40, cause=9)

    assert codec.decode(encode_event(event)) == [2, 9, 3, 2, 40]


def test_large_event_is_compressed_and_round_trips() -> None:
    event = TaskSucceeded(node=1, attempt=1, result=["same"] * 500)

    data = encode_event(event)

    assert data[0] & 0x01
    assert decode_event(data) == event


@pytest.mark.parametrize(
    ("event", "key"),
    [
        (EVENTS[0], "sub"),
        (TaskEnqueued(node=7, attempt=3), "enq:7:3"),
        (TaskSucceeded(node=7, attempt=3), "out:7:3"),
        (TaskFailed(node=7, attempt=3, error=ERROR), "out:7:3"),
        (BarrierDecremented(barrier=8, source=7), "dec:8:7"),
        (BarrierReleased(barrier=8), "rel:8"),
        (WorkflowCompleted(), "end"),
        (WorkflowFailed(error=ERROR), "end"),
        (WorkflowCancelled(reason="x"), "end"),
        (TaskStarted(node=7, attempt=3, worker="w", msg_id="1-0"), None),
    ],
    ids=lambda v: v if isinstance(v, str | None) else type(v).__name__,
)
def test_idempotency_key(event: Event, key: str | None) -> None:
    assert event.idempotency_key() == key


def test_idempotency_key_ignores_cause_and_payload() -> None:
    a = TaskSucceeded(node=1, attempt=1, result="a", cause=4)
    b = TaskFailed(node=1, attempt=1, error=ERROR, cause=99)

    assert a.idempotency_key() == b.idempotency_key()


@pytest.mark.parametrize("cause", [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32, 2**40])
@pytest.mark.parametrize(
    "event",
    [
        BarrierDecremented(barrier=12, source=3),
        BarrierReleased(barrier=300),
        TaskEnqueued(node=70000, attempt=2, delay_ms=1500),
        TaskFailed(node=1, attempt=1, error=ERROR, retry_delay_ms=10),
    ],
    ids=lambda e: type(e).__name__,
)
def test_cause_hole_filled_equals_encoding_with_cause(event: Event, cause: int) -> None:
    head, tail = encode_with_cause_hole(event)

    filled = head + msgpack.packb(cause) + tail

    with_cause = dataclasses.replace(event, cause=cause)
    assert filled == encode_event(with_cause)
    assert decode_event(filled) == with_cause


def test_cause_hole_ignores_the_events_own_cause() -> None:
    head, tail = encode_with_cause_hole(BarrierDecremented(barrier=1, source=0, cause=55))

    assert decode_event(head + msgpack.packb(7) + tail).cause == 7


@pytest.mark.parametrize(
    "raw",
    [
        5,
        "TaskEnqueued",
        {"type": "done"},
        [],
        [0],
        [11, 0],
        [-1],
        ["2", 0, 1, 1],
        [8, 0, "extra field"],
        [2, 0],  # missing node and attempt
        [2, 0, 1, 1, 0, "extra"],
    ],
    ids=repr,
)
def test_decode_event_rejects_non_events(raw: object) -> None:
    data = codec.encode(raw)

    with pytest.raises(DecodeError) as info:
        decode_event(data)

    assert info.value.data is data


def test_decode_event_rejects_undecodable_bytes() -> None:
    with pytest.raises(DecodeError):
        decode_event(b"")


@pytest.mark.parametrize("raw", [[[1]], [{"a": 1}]], ids=repr)
def test_decode_event_rejects_unhashable_code(raw: object) -> None:
    with pytest.raises(DecodeError):
        decode_event(codec.encode(raw))


def test_an_event_with_plain_data_round_trips() -> None:
    event = TaskSucceeded(node=0, attempt=1, result={"k": [1, "x", None, b"\x00"]})

    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize(
    ("stream_id", "time_ms"),
    [("1700000000123-0", 1700000000123), ("1700000000123-42", 1700000000123), ("0-1", 0)],
)
def test_entry_time_comes_from_the_stream_id(stream_id: str, time_ms: int) -> None:
    entry = Entry(seq=1, stream_id=stream_id, event=WorkflowCompleted())

    assert entry.time_ms == time_ms


def test_events_are_frozen() -> None:
    event = TaskEnqueued(node=1, attempt=1)

    with pytest.raises(AttributeError):
        event.node = 2  # type: ignore[misc]


def test_a_definition_hash_is_stored_as_its_raw_bytes() -> None:
    submitted = EVENTS[0]
    assert isinstance(submitted, WorkflowSubmitted)
    as_text = codec.encode(
        [1, *(getattr(submitted, f.name) for f in dataclasses.fields(submitted))]
    )
    assert len(encode_event(submitted)) == len(as_text) - 16
    assert codec.decode(encode_event(submitted))[2] == bytes.fromhex("ab" * 16)
    assert decode_event(as_text) == submitted  # logs written with the text still read
    for odd in ("not-hex", "AB" * 16, "ab"):  # not our spelling: kept as given
        event = dataclasses.replace(submitted, def_hash=odd)
        assert decode_event(encode_event(event)) == event
