"""Which ticks of a schedule are due, proven on random crons, time zones, cursors and
clocks (no Redis): nothing before the cursor or not yet due is ever submitted, each
policy keeps what it says, and looking often or rarely submits the same ticks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streamflow.model.schedules import ScheduleSpec, due, jitter_of, tick_workflow_id, ticks

CRONS = ["* * * * *", "*/5 * * * *", "0 2 * * *", "30 1 * * 0", "* * * * * */30", "15 */3 * * *"]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
START = 1_774_000_000_000  # March 2026: daylight saving starts in both hemispheres' zones

specs = st.builds(
    ScheduleSpec,
    name=st.sampled_from(["a", "nightly", "report.v2"]),
    cron=st.sampled_from(CRONS),
    tz=st.sampled_from(ZONES),
    catch_up=st.sampled_from(["skip", "latest", "all"]),
    max_catch_up=st.integers(1, 5),
    misfire_grace_ms=st.integers(0, 600_000),
    jitter_ms=st.sampled_from([0, 0, 1_000, 90_000]),
)
offsets = st.integers(0, 2 * 86_400_000)


def dealt_with(spec: ScheduleSpec, after_ms: int, now_ms: int) -> list[int]:
    """The ticks after ``after_ms`` a look at ``now_ms`` deals with: in order, up to the
    first not yet due (a later one waits behind it, whatever its jitter)."""
    found: list[int] = []
    for tick in ticks(spec, after_ms):
        if tick + jitter_of(spec, tick) > now_ms:
            return found
        found.append(tick)
    raise AssertionError("unreachable")


@given(specs, offsets, offsets)
def test_due_ticks_are_ticks_after_the_cursor_and_due(spec: ScheduleSpec, a: int, b: int) -> None:
    cursor, now = START + min(a, b), START + max(a, b)
    found = due(spec, cursor, now)
    dealt = dealt_with(spec, cursor, now)
    assert found.cursor_ms == (dealt[-1] if dealt else cursor)
    assert all(cursor < t <= now for t in found.submit)
    assert set(found.submit) <= set(dealt)
    assert list(found.submit) == sorted(set(found.submit))
    assert len(found.submit) + found.skipped == len(dealt)
    if spec.catch_up == "latest":
        assert list(found.submit) == dealt[-1:]
    elif spec.catch_up == "all":
        assert list(found.submit) == dealt[-spec.max_catch_up :]
    else:
        late = [t for t in dealt if now - (t + jitter_of(spec, t)) > spec.misfire_grace_ms]
        assert list(found.submit) == [t for t in dealt if t not in late]


@given(specs, st.lists(offsets, min_size=1, max_size=6))
def test_looking_often_or_once_submits_the_same_ticks_when_all_are_caught_up(
    spec: ScheduleSpec, clocks: list[int]
) -> None:
    spec = ScheduleSpec(
        name=spec.name,
        cron=spec.cron,
        tz=spec.tz,
        catch_up="all",
        max_catch_up=100_000,
        jitter_ms=spec.jitter_ms,
    )
    cursor, submitted = START, []
    for now in sorted(START + c for c in clocks):
        found = due(spec, cursor, now)
        submitted += found.submit
        cursor = found.cursor_ms
    once = due(spec, START, START + max(clocks))
    assert submitted == list(once.submit)
    assert len(set(submitted)) == len(submitted)


@given(st.sampled_from(["a", "nightly"]), st.text(min_size=1, max_size=20), st.integers(1, 64))
def test_a_ticks_workflow_id_is_the_same_everywhere_and_on_a_shard(
    name: str, tick: str, shards: int
) -> None:
    workflow_id = tick_workflow_id(name, tick, shards)
    assert workflow_id == tick_workflow_id(name, tick, shards)
    shard, _, rest = workflow_id.partition("-")
    assert 0 <= int(shard) < shards and len(rest) == 24
    assert workflow_id != tick_workflow_id(name + "x", tick, shards)
