"""Script calls coalesced across threads: each caller gets its own replies and errors."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import redis

from streamflow import App
from streamflow.store.runner import Scripts
from streamflow.store.scripts import Reply, reply_code
from streamflow.store.wire import Wire, stream_messages
from tests.helpers import master_of, start_call

pytestmark = pytest.mark.integration


def test_threads_share_pipelines_and_keep_their_own_replies(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: Counter[int] = Counter()
    run = Scripts._run

    def counting(self: Scripts, calls: Any) -> list[Any]:
        sizes[len(calls)] += 1
        return run(self, calls)

    monkeypatch.setattr(Scripts, "_run", counting)
    replies: dict[int, list[Any]] = {}
    errors: dict[int, Exception] = {}

    broken = start_call(app, "0-" + "f" * 24)
    app.client.set(broken.keys[0], "not a stream")  # XLEN on it fails: WRONGTYPE

    def caller(i: int) -> None:
        call = start_call(app, f"0-{i:024x}")
        replies[i] = []
        for _ in range(50):
            if i % 5 == 0:  # a failing call: its error is this caller's alone
                try:
                    app.scripts.run(broken)
                except redis.ResponseError as exc:
                    errors[i] = exc
            replies[i].append(reply_code(app.scripts.run(call)))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r == [Reply.STALE] * 50 for r in replies.values())
    assert sorted(errors) == [0, 5, 10, 15]
    assert all("WRONGTYPE" in str(e) for e in errors.values())
    assert sum(n * count for n, count in sizes.items()) == 16 * 50 + 4 * 50
    assert max(sizes) > 1  # some pipelines carried several threads' calls


def test_an_unreachable_redis_fails_every_caller_and_the_next_call_recovers(app: App) -> None:
    broken = App("redis://127.0.0.1:1/0", retry_for=0)
    for _ in range(2):
        with pytest.raises(redis.ConnectionError):
            broken.scripts.run(start_call(broken, "0-" + "0" * 24))
    broken.close()
    assert reply_code(app.scripts.run(start_call(app, "0-" + "0" * 24))) is Reply.STALE


def test_a_wire_answers_errors_in_place_and_reconnects_after_its_connection_is_killed(
    app: App,
) -> None:
    client = master_of(app.client, "wire:k")  # a plain client (a cluster's: its master)
    wire = Wire(client)
    client.set("wire:s", "text")
    replies = wire.execute([("SET", "wire:k", 1), ("XLEN", "wire:s"), ("GET", "wire:k")])
    assert replies[0] == b"OK" and replies[2] == b"1"
    assert isinstance(replies[1], redis.ResponseError) and "WRONGTYPE" in str(replies[1])
    (own_id,) = wire.execute([("CLIENT", "ID")])
    client.client_kill_filter(_id=own_id)
    with pytest.raises(redis.ConnectionError):  # no retries configured, as in a Pipeline
        wire.execute([("GET", "wire:k")])
    assert wire.execute([("GET", "wire:k")]) == [b"1"]  # the next call reconnects
    wire.close()


def test_stream_messages_reads_resp2_and_resp3_replies() -> None:
    entries = [[b"1-0", [b"m", b"abc"]], [b"2-0", [b"x", b"1", b"m", b"def"]], [b"3-0", None]]
    expected = [("q", "1-0", b"abc"), ("q", "2-0", b"def"), ("q", "3-0", b"")]
    assert stream_messages([[b"q", entries]]) == expected
    assert stream_messages({b"q": entries}) == expected
    assert stream_messages(None) == []
