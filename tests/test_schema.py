"""The Lua scripts and the Python shell share one schema and declared interfaces: no
Lua file spells a schema name by hand, every key reaches a script through KEYS, and each
script's wrapper passes what its header declares."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from streamflow.model import schema
from streamflow.store import scripts
from streamflow.store.keys import Keys
from streamflow.store.runner import script_source

LUA = Path(scripts.__file__).with_name("lua")
NAMES = {*schema.LUA_NAMES.values(), schema.PENDING, schema.PROJECTOR_GROUP}
NAMES |= {code.value for code in scripts.Reply}
# Commands whose first argument is not a key.
NOT_KEYED = {"TIME", "PUBLISH"}


def _code(path: Path) -> str:
    """A Lua file without its comments."""
    return "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())


def _files() -> list[Path]:
    return sorted(LUA.glob("*.lua"))


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_no_lua_file_spells_a_schema_name_by_hand(path: Path) -> None:
    code = re.sub(r"redis\.call\('\w+'", "", _code(path))  # command names are not ours
    literals = re.findall(r"'([^']*)'", code)
    spelled = sorted({text for text in literals if text in NAMES})
    assert spelled == [], f"{path.name} spells {spelled}: use the prelude's constants"


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_every_key_reaches_a_script_through_keys(path: Path) -> None:
    code = re.sub(r"redis\.call\('XGROUP', '\w+',", "redis.call('XGROUP',", _code(path))
    for command, first in re.findall(r"redis\.call\('(\w+)',\s*([^,)]+)", code):
        if command in NOT_KEYED:
            continue
        # A name (bound to KEYS, or a helper's parameter) or KEYS[...], never built.
        assert re.fullmatch(r"\w+|KEYS\[[^\]]+\]", first.strip()), (path.name, command, first)
        assert "ARGV" not in first, (path.name, command, first)


def test_each_script_has_one_wrapper_and_every_name_is_written_in() -> None:
    files = {p.stem for p in _files() if not p.name.startswith("_")}
    assert files == scripts.SCRIPTS
    assert all(callable(getattr(scripts, name)) for name in files)
    for name in files:
        source = script_source(name)
        lines = (line.split("--")[0] for line in source.splitlines())
        code = re.sub(r"'[^']*'|\"[^\"]*\"", "", "\n".join(lines))
        # Only Redis's own globals stay upper-case: every schema name became a string.
        assert set(re.findall(r"\b[A-Z][A-Z0-9_]*\b", code)) <= {"KEYS", "ARGV"}, name


def _declared(path: Path, table: str) -> int:
    """The highest fixed ``KEYS[n]``/``ARGV[n]`` a script's header declares."""
    header = "\n".join(line for line in path.read_text().splitlines() if line.startswith("--"))
    found = [int(n) for n in re.findall(rf"{table}\[(\d+)\]", header)]
    return max(found, default=0)


WF = Keys("t").workflow("0-" + "a" * 24)
DECIDED = scripts.Decisions(0, [], [])
CALLS: dict[str, Any] = {
    "submit": scripts.submit(
        wf=WF,
        definition="d",
        definitions="ds",
        submitted=b"",
        def_hash="",
        wake=b"",
        grace_ms=0,
        retention_ms=0,
        definition_bytes=b"",
        args={},
        decided=DECIDED,
    ),
    "start": scripts.start(
        wf=WF,
        queue="q",
        node=0,
        attempt=1,
        msg_id="1-0",
        started=b"",
        finalizer=False,
        catch_up_after="",
        catch_up_count=0,
        takeover=b"",
    ),
    "outcome": scripts.outcome(
        wf=WF,
        queue="q",
        node=0,
        attempt=1,
        event=b"",
        kind=schema.Outcome.SUCCESS,
        decrement_key="",
        decrement_head=b"",
        decrement_tail=b"",
        wake=b"",
        grace_ms=0,
        catch_up_after="",
        catch_up_count=0,
        finalizer=False,
        result_field="",
        result_blob=b"",
        quiet_reaches=0,
        counter="",
        quiet_below=0,
        msg_id="",
    ),
    "apply": scripts.apply(
        wf=WF,
        trigger_queue="",
        decided=DECIDED,
        expected=0,
        trigger_msg_id="",
        trigger_wake=b"",
        grace_ms=0,
        archive_wake=b"",
        archive_inline=0,
        done=False,
        folded_seq=0,
        folded_id="0-0",
    ),
    "resume": scripts.resume(
        wf=WF,
        archive_sha1="",
        expected=0,
        folded_seq=0,
        folded_id="0-0",
        expiry_member="",
        restore=[],
        fields={},
        bases={},
        decided=DECIDED,
    ),
    "archive": scripts.archive(wf=WF, length=0, data=b"", archive_wake=b""),
    "rebuild": scripts.rebuild(wf=WF, length=0, fields={}),
    "expire": scripts.expire(
        wf=WF, member="m", tombstone_ms=1, definitions="ds", definition="d", def_hash="h"
    ),
    "timer_move": scripts.timer_move(delayed="d", stream="s", limit=1),
    "park": scripts.park(queue="q", parked="p", index="i", msg_id="0-1", message=b"", entry="e"),
    "unpark": scripts.unpark(parked="p", queue="q", index="i", limit=1, entry="e"),
    "renew": scripts.renew(queue="q", consumer="c", idle_ms=0, msg_ids=[]),
    "limit": scripts.limit(limiter="l", limit=1, token="t", score_ms=0, cutoff_ms=0, ttl_ms=0),
    "results": scripts.results(wf=WF, fields=[]),
    "beat": scripts.beat(beats="b", consumer="c"),
    "fail": scripts.fail(wf=WF, failed=b""),
    "note": scripts.note(wf=WF, key="ch:x", event=b""),
    "reclaim": scripts.reclaim(
        stream="s", beats="b", group="g", suspect="x", consumer="c", dead_before=0, count=1
    ),
    "lone": scripts.lone(
        wf=WF, queue="q", started=b"", outcome=b"", end=b"", status="s", ran_ms=0, msg_id="1-0"
    ),
    "give_back": scripts.give_back(
        queue="q", beats="b", msg_id="1-0", owner="x", taken_ms=0, consumer="c"
    ),
    "schedule_claim": scripts.schedule_claim(
        schedule="s", pending="p", read=0, cursor=1, skipped=0, lease_ms=1, ticks=[]
    ),
    "schedule_take": scripts.schedule_take(pending="p", lease_ms=1, limit=1),
    "schedule_done": scripts.schedule_done(
        schedule="s", pending="p", tick="1", workflow_id="", tick_ms="", outcome="failed"
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_wrapper_passes_the_keys_and_arguments_its_header_declares(name: str) -> None:
    call = CALLS[name]
    path = LUA / f"{name}.lua"
    assert call.script == name
    assert len(call.keys) == _declared(path, "KEYS")
    # Fixed arguments, then variable ones (decision slots, pairs, ids) after them.
    assert len(call.args) >= _declared(path, "ARGV")
    assert len(CALLS) == len(scripts.SCRIPTS)
