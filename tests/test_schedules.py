"""Schedules: one workflow per tick however many processes look, ticks never lost to a
process that dies, the catch-up and overlap policies, pause, trigger, delete, and the
command line. Looks are driven by hand on a clock of the test's own where time matters;
a real worker runs one schedule end to end."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamflow import App
from streamflow.logs import get_logger
from streamflow.model.events import WorkflowSubmitted
from streamflow.model.schedules import ScheduleSpec, tick_workflow_id, ticks
from streamflow.runtime import scheduler as scheduler_module
from streamflow.runtime.outage import Outage
from streamflow.runtime.scheduler import Scheduler
from tests.helpers import cli
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

MINUTE = 60_000
T0 = 1_780_000_000_000 // MINUTE * MINUTE  # on a minute


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def looker(app: App, clock: Clock) -> Scheduler:
    """A scheduler role of ``app`` on ``clock``, stepped by hand."""
    log = get_logger("tests")
    stopping = threading.Event()
    return Scheduler(
        app.store,
        app.schedule_specs,
        app.fire_schedule,
        stopping=stopping,
        outage=Outage(log),
        log=log,
        now_ms=clock,
    )


@pytest.fixture
def apps(redis_url: str, r: redis.Redis) -> Iterator[list[App]]:
    """Three processes' Apps on the test's Redis (r flushed it)."""
    made = [App(redis_url) for _ in range(3)]
    yield made
    for each in made:
        each.close()


def submitted_ticks(app: App, name: str, tick_keys: list[str]) -> dict[str, dict[str, Any]]:
    """For each tick key, the schedule link its workflow recorded (absent: none)."""
    found = {}
    for tick in tick_keys:
        workflow_id = tick_workflow_id(name, tick, app.shards)
        if app.client.exists(app.keys.log(workflow_id)):
            first = app.history(workflow_id)[0].event
            assert isinstance(first, WorkflowSubmitted)
            found[tick] = first.options["schedule"]
    return found


def workflow_count(r: redis.Redis) -> int:
    return sum(1 for _ in r.scan_iter(match="*:log", count=1000))


names = (f"race-{i}" for i in itertools.count())


@pytest.mark.once  # the scripts it races are run in every setting by the tests below
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    looks=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 7 * MINUTE)), max_size=12),
    cron=st.sampled_from(["* * * * *", "*/2 * * * *", "* * * * * */20"]),
)
def test_racing_processes_submit_each_tick_once(
    apps: list[App], r: redis.Redis, looks: list[tuple[int, int]], cron: str
) -> None:
    name = next(names)
    clock = Clock(T0)
    lookers = []
    for app in apps:
        app.schedule_specs.clear()
        app.schedule(name, app_message(app), cron=cron, catch_up="all", max_catch_up=1000)
        lookers.append(looker(app, clock))
    before = workflow_count(r)
    for who, forward in [(0, 0), *looks]:  # the first look registers it at T0
        clock.now_ms += forward
        lookers[who].look(apps[who].schedule_specs[name])
    spec = apps[0].schedule_specs[name]
    every = list(itertools.takewhile(lambda t: t <= clock.now_ms, ticks(spec, T0)))
    # The last look to run may have been any process's: ticks due by then are all in.
    last = looks[-1][0] if looks else 0
    lookers[last].look(spec)
    found = submitted_ticks(apps[0], name, [str(t) for t in every])
    assert sorted(found) == sorted(str(t) for t in every)
    assert all(link == {"name": name, "tick": tick} for tick, link in found.items())
    assert workflow_count(r) - before == len(every)
    state = next(s for s in apps[0].schedules() if s.spec.name == name)
    assert (state.fired, state.pending, state.cursor_ms) == (
        len(every),
        0,
        every[-1] if every else T0,
    )


def app_message(app: App) -> Any:
    if "noop" not in app.actors:
        app.actor(lambda *a: None, actor_name="noop")
    return app.actors["noop"].message()


def test_a_tick_claimed_by_a_process_that_died_is_submitted_by_another(
    apps: list[App], r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(T0)
    first, second = apps[0], apps[1]
    for app in (first, second):
        app.schedule("nightly", app_message(app), cron="* * * * *")
    dying = looker(first, clock)
    dying.look(first.schedule_specs["nightly"])  # registers, at T0
    clock.now_ms += MINUTE

    def die(*args: Any) -> tuple[str, str]:
        raise SystemExit("the process died after claiming its tick")

    dying.fire = die
    monkeypatch.setattr(scheduler_module, "LEASE_MS", 1)  # a short lease, for the test
    with pytest.raises(SystemExit):
        dying.look(first.schedule_specs["nightly"])
    state = second.schedules()[0]
    assert (state.cursor_ms, state.pending, state.fired) == (T0 + MINUTE, 1, 0)
    # Another process takes it once its lease is over.
    taker = looker(second, clock)
    wait_until(
        lambda: taker.look(second.schedule_specs["nightly"]) or not second.schedules()[0].pending, 5
    )
    assert list(submitted_ticks(second, "nightly", [str(T0 + MINUTE)])) == [str(T0 + MINUTE)]
    assert second.schedules()[0].fired == 1


@pytest.mark.parametrize(
    ("catch_up", "submitted"),
    [
        ("skip", []),
        ("latest", [T0 + 10 * MINUTE]),
        ("all", [T0 + 8 * MINUTE, T0 + 9 * MINUTE, T0 + 10 * MINUTE]),
    ],
)
def test_missed_ticks_follow_the_catch_up_policy(
    app: App, catch_up: str, submitted: list[int]
) -> None:
    clock = Clock(T0)
    app.schedule(
        "hourly",
        app_message(app),
        cron="* * * * *",
        catch_up=catch_up,
        max_catch_up=3,
        misfire_grace=10,
    )
    role = looker(app, clock)
    role.look(app.schedule_specs["hourly"])
    clock.now_ms += 10 * MINUTE + 30_000  # ten ticks missed, the last 30 s ago (grace: 10)
    role.look(app.schedule_specs["hourly"])
    missed = [str(T0 + i * MINUTE) for i in range(1, 11)]
    assert sorted(submitted_ticks(app, "hourly", missed)) == sorted(str(t) for t in submitted)
    state = app.schedules()[0]
    assert state.skipped == 10 - len(submitted)


def test_overlap_skip_and_cancel(app: App) -> None:
    clock = Clock(T0)
    app.schedule("skips", app_message(app), cron="* * * * *", overlap="skip")
    app.schedule("cancels", app_message(app), cron="* * * * *", overlap="cancel")
    role = looker(app, clock)
    for spec in app.schedule_specs.values():
        role.look(spec)
    for _ in range(2):  # no worker: every run stays running
        clock.now_ms += MINUTE
        for spec in app.schedule_specs.values():
            role.look(spec)
    states = {s.spec.name: s for s in app.schedules()}
    assert (states["skips"].fired, states["skips"].overlapped) == (1, 1)
    assert (states["cancels"].fired, states["cancels"].overlapped) == (2, 0)
    first = tick_workflow_id("cancels", str(T0 + MINUTE), app.shards)
    assert app.handle(first).status().status == "cancelled"
    assert app.handle(states["cancels"].last_workflow_id).status().status == "running"


def test_pause_trigger_and_a_failing_factory(app: App) -> None:
    clock = Clock(T0)
    calls: list[Any] = []

    def broken(when: Any) -> Any:
        calls.append(when)
        raise RuntimeError("a bug in the factory")

    app.schedule("paused", app_message(app), cron="* * * * *")
    app.schedule("broken", broken, cron="* * * * *", tz="Europe/Paris")
    role = looker(app, clock)
    for spec in app.schedule_specs.values():
        role.look(spec)
    app.pause_schedule("paused")
    clock.now_ms += 2 * MINUTE
    workflow_id = app.trigger_schedule("paused")  # runs while paused
    for spec in app.schedule_specs.values():
        role.look(spec)
    states = {s.spec.name: s for s in app.schedules()}
    assert (states["paused"].paused, states["paused"].skipped, states["paused"].fired) == (
        True,
        2,
        1,
    )
    assert states["paused"].last_workflow_id == workflow_id
    assert app.handle(workflow_id).status().status == "running"
    assert (states["broken"].fired, app.client.hget(app.keys.schedule("broken"), "failed")) == (
        0,
        b"2",
    )
    assert [str(when.tzinfo) for when in calls] == ["Europe/Paris", "Europe/Paris"]
    app.resume_schedule("paused")
    clock.now_ms += MINUTE
    role.look(app.schedule_specs["paused"])
    assert app.schedules()[1].fired == 2
    with pytest.raises(
        ValueError, match="no schedule is named 'nope' \\(registered: broken, paused\\)"
    ):
        app.pause_schedule("nope")


def test_bad_settings_are_refused_by_name(app: App) -> None:
    message = app_message(app)
    for kwargs, says in [
        ({"cron": "every day"}, "cron must be a cron expression"),
        ({"cron": "* * * * *", "tz": "Mars/Olympus"}, "tz must be an IANA time zone"),
        ({"cron": "* * * * *", "catch_up": "some"}, "catch_up must be one of"),
        ({"cron": "* * * * *", "overlap": "queue"}, "overlap must be one of"),
    ]:
        with pytest.raises(ValueError, match=says):
            app.schedule("ok", message, **kwargs)
    with pytest.raises(ValueError, match="a schedule's name is 1 to 100"):
        app.schedule("has space", message, cron="* * * * *")
    with pytest.raises(TypeError, match="a schedule's target must be a Message"):
        app.schedule("ok", 42, cron="* * * * *")  # type: ignore[arg-type]
    app.schedule("ok", message, cron="* * * * *")
    with pytest.raises(ValueError, match="a schedule named 'ok' exists already"):
        app.schedule("ok", message, cron="* * * * *")
    assert isinstance(app.schedule_specs["ok"], ScheduleSpec)


def test_a_worker_runs_a_schedule_and_the_cli_acts_on_it(
    app: App, r: redis.Redis, redis_url: str
) -> None:
    @app.actor
    def stamp(when: str) -> str:
        r.rpush("stamps", when)
        return when

    app.schedule("every-second", lambda when: stamp.message(when.isoformat()), cron="* * * * * *")
    with app.worker(concurrency=2):
        wait_until(lambda: r.llen("stamps") >= 2, 10, 0.05, "two ticks run")
        listed = json.loads(cli(redis_url, "schedules", "list", "--json").stdout)
        assert [s["spec"]["name"] for s in listed] == ["every-second"]
        assert (
            cli(redis_url, "schedules", "pause", "every-second").stdout == "paused every-second\n"
        )
        triggered = cli(redis_url, "schedules", "trigger", "every-second").stdout
        workflow_id = triggered.split()[-1]
        # Submitted at the scheduler's next look (about a second), then run.
        wait_until(lambda: app.schedules()[0].last_workflow_id == workflow_id, 10)
        assert app.handle(workflow_id).result(timeout=10)
    state = app.schedules()[0]
    assert state.paused and state.fired >= 3
    text = cli(redis_url, "schedules", "list").stdout
    assert text.startswith("every-second  '* * * * * *' UTC  catch-up skip, overlap allow  PAUSED")
    assert cli(redis_url, "schedules", "delete", "every-second").stdout == "deleted every-second\n"
    assert cli(redis_url, "schedules", "list").stdout.startswith("no schedule registered")
    bad = cli(redis_url, "schedules", "resume", "gone", code=1)
    assert bad.stderr == (
        "streamflow schedules: ValueError: no schedule is named 'gone' (registered: none)\n"
    )
