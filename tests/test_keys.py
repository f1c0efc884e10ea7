"""
Unit tests of ``streamflow.store.keys`` and ``streamflow.model.messages``: ids, shards,
key names, task messages and wake-ups.
"""

from __future__ import annotations

import re

import pytest
from redis.crc import key_slot

from streamflow.model import codec, messages
from streamflow.model.errors import DecodeError
from streamflow.store import keys
from streamflow.store.keys import CLUSTER_SLOTS, Keys, shard_tag, slot_of

WF = "7-0123456789abcdef01234567"
DEF_HASH = "00112233445566778899aabbccddeeff"


def test_new_workflow_id_names_its_shard() -> None:
    workflow_id = keys.new_workflow_id(12)

    assert re.fullmatch(r"12-[0-9a-f]{24}", workflow_id)
    assert messages.shard_of(workflow_id) == 12


def test_new_workflow_ids_differ() -> None:
    assert keys.new_workflow_id(0) != keys.new_workflow_id(0)


@pytest.mark.parametrize(("workflow_id", "shard"), [("0-ab", 0), (WF, 7), ("123-f", 123)])
def test_shard_of(workflow_id: str, shard: int) -> None:
    assert messages.shard_of(workflow_id) == shard


@pytest.mark.parametrize("workflow_id", ["", "abc", "-ab", "x-ab", "1x-ab", "+1-ab", " 1-ab", "12"])
def test_shard_of_rejects_malformed_ids_naming_them(workflow_id: str) -> None:
    with pytest.raises(ValueError) as info:
        messages.shard_of(workflow_id)

    assert repr(workflow_id) in str(info.value)
    assert "<shard>-<hex>" in str(info.value)


@pytest.mark.parametrize("workflow_id", ["1-", "1-xyz"])
def test_shard_of_rejects_a_bad_hex_part(workflow_id: str) -> None:
    with pytest.raises(ValueError, match="<shard>-<hex>"):
        messages.shard_of(workflow_id)


@pytest.mark.parametrize("workflow_id", ["\u00b2-ab", "\u0661-ab"])
def test_shard_of_rejects_non_ascii_digits(workflow_id: str) -> None:
    with pytest.raises(ValueError, match="<shard>-<hex>"):
        messages.shard_of(workflow_id)


def test_task_message_round_trips() -> None:
    data = messages.encode_task_message(WF, 99999, 3, DEF_HASH)

    assert messages.decode_task_message(data) == (WF, 99999, 3, DEF_HASH)


def test_task_message_is_a_few_dozen_bytes() -> None:
    workflow_id = keys.new_workflow_id(0)

    data = messages.encode_task_message(workflow_id, 99999, 3, DEF_HASH)

    assert len(data) < 60
    assert data[0] == codec.VERSION << 4  # small: never compressed


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "text",
        [],
        [WF, 1, 1],
        [WF, 1, 1, bytes.fromhex(DEF_HASH), "extra"],
        [1, 1, 1, bytes.fromhex(DEF_HASH)],
        [WF, "1", 1, bytes.fromhex(DEF_HASH)],
        [WF, 1, 1.0, bytes.fromhex(DEF_HASH)],
        [WF, 1, 1, DEF_HASH],
        {"wf": WF},
    ],
    ids=repr,
)
def test_decode_task_message_rejects_junk(raw: object) -> None:
    data = codec.encode(raw)

    with pytest.raises(DecodeError) as info:
        messages.decode_task_message(data)

    assert info.value.data is data
    assert "not a task message" in str(info.value)


def test_decode_task_message_rejects_undecodable_bytes() -> None:
    with pytest.raises(DecodeError):
        messages.decode_task_message(b"\xff\x00")


def test_wake_round_trips() -> None:
    assert messages.decode_wake(messages.encode_wake(WF, "out:3:1")) == (WF, "out:3:1")


@pytest.mark.parametrize("raw", [None, [], [WF], [WF, "t", "x"], [1, "t"], "wf"], ids=repr)
def test_decode_wake_rejects_junk(raw: object) -> None:
    data = codec.encode(raw)

    with pytest.raises(DecodeError) as info:
        messages.decode_wake(data)

    assert info.value.data is data


@pytest.mark.parametrize("prefix", ["sf", "app:sf"])
def test_every_workflow_key_carries_the_shard_hash_tag(prefix: str) -> None:
    k = Keys(prefix)
    workflow_keys = [k.log(WF), k.idx(WF), k.archive(WF), k.done_channel(WF)]

    assert workflow_keys == [
        f"{prefix}:{{7.442}}:{WF}:log",
        f"{prefix}:{{7.442}}:{WF}:idx",
        f"{prefix}:{{7.442}}:{WF}:archive",
        f"{prefix}:{{7.442}}:{WF}:done",
    ]
    assert len(set(workflow_keys)) == 4
    # Redis Cluster hashes the first {...} of a key: it must be the shard's tag.
    assert all(re.search(r"\{(.*?)\}", key).group(1) == "7.442" for key in workflow_keys)  # type: ignore[union-attr]


def test_shard_keys_carry_the_same_hash_tag() -> None:
    k = Keys()
    shard_keys = [
        k.queue(7, "default"),
        k.delayed(7, "default"),
        k.wake(7),
        k.wake_due(7),
        k.active(7),
    ]

    assert shard_keys == [
        "sf:{7.442}:q:default",
        "sf:{7.442}:delayed:default",
        "sf:{7.442}:wake",
        "sf:{7.442}:wake-due",
        "sf:{7.442}:active",
    ]


def test_global_keys_have_no_hash_tag() -> None:
    k = Keys()

    assert k.dead() == "sf:dead"


def test_definitions_live_on_the_shards_that_use_them() -> None:
    k = Keys()

    assert k.definition(7, DEF_HASH) == f"sf:{{7.442}}:def:{DEF_HASH}"
    assert k.definitions(7) == "sf:{7.442}:defs"


def test_shard_tags_are_fixed() -> None:
    # Part of every key name: a change would orphan every stored workflow.
    assert [shard_tag(s) for s in range(8)] == [
        "0.325", "1.38", "2.671", "3.951", "4.1753", "5.116", "6.679", "7.442"
    ]  # fmt: skip


def test_a_shard_tag_hashes_where_redis_cluster_puts_it() -> None:
    for shard in (0, 1, 2, 7, 1023, 1024, 5000):
        key = Keys().log(f"{shard}-{'0' * 24}")

        assert key_slot(key.encode()) == slot_of(shard_tag(shard))


@pytest.mark.parametrize("masters", [1, 2, 3, 4, 5, 7, 8, 12])
@pytest.mark.parametrize("per_master", [4, 16])
def test_shards_spread_evenly_over_masters_of_even_slot_ranges(
    masters: int, per_master: int
) -> None:
    # What redis-cli --cluster create gives each master: an even run of slots.
    bounds = [CLUSTER_SLOTS * m // masters for m in range(masters + 1)]
    counts = [0] * masters
    for shard in range(masters * per_master):
        slot = slot_of(shard_tag(shard))
        counts[next(m for m in range(masters) if bounds[m] <= slot < bounds[m + 1])] += 1

    assert max(counts) - min(counts) <= 2, counts


def test_shard_tags_are_distinct_and_slots_differ_up_to_1024() -> None:
    tags = [shard_tag(s) for s in range(1100)]

    assert len(set(tags)) == len(tags)
    assert len({slot_of(t) for t in tags[:1024]}) == 1024


def test_a_negative_shard_has_no_tag() -> None:
    with pytest.raises(ValueError, match="-1"):
        shard_tag(-1)


def test_workflow_keys_reject_a_malformed_id() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        Keys().log("nope")


def test_two_workflows_on_one_shard_share_the_slot_but_not_keys() -> None:
    k = Keys()
    other = keys.new_workflow_id(7)

    assert k.log(other) != k.log(WF)
    assert k.log(other).split(":")[1] == k.log(WF).split(":")[1] == "{7.442}"
