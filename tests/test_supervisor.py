"""``streamflow worker --processes N``: a supervisor of worker processes, each under its
own consumer name; a dead one restarted, SIGTERM a graceful stop of all, a second SIGINT a
hard one. Real processes, real signals, a real Redis."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from streamflow import App, Group
from streamflow.cli.main import build_parser
from streamflow.cli.processes import child_command, processes_of
from streamflow.model.events import TaskStarted
from tests.helpers import ROOT, cli, remote_actor, runs
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "streamflow.cli", "--log-level", "info"]


def supervisor(
    redis_url: str, log: Path, processes: int = 2, *args: str
) -> subprocess.Popen[bytes]:
    """``streamflow worker tests.sample_app:app --processes N`` (one slot per process)."""
    command = [*CLI, "worker", "tests.sample_app:app", "--url", redis_url]
    command += ["--processes", str(processes), "--concurrency", "1", *args]
    env = {**os.environ, "STREAMFLOW_REDIS_URL": redis_url}
    return subprocess.Popen(command, cwd=ROOT, env=env, stderr=log.open("wb"))


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Supervisors a test started: killed, with their workers, if the test did not stop
    them."""
    running: list[subprocess.Popen[bytes]] = []
    yield running
    for process in running:
        if process.poll() is None:
            workers = children(process.pid)
            process.kill()
            process.wait()
            for pid in workers:
                os.kill(pid, signal.SIGKILL)


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def _states(redis_url: str, cards: list[dict[str, Any]]) -> set[str]:
    """The states the roster shows now for the workers of ``cards``."""
    now = {
        c["consumer"]: c["state"] for c in json.loads(cli(redis_url, "workers", "--json").stdout)
    }
    return {now[card["consumer"]] for card in cards}


def live_cards(redis_url: str) -> list[dict[str, Any]]:
    cards = json.loads(cli(redis_url, "workers", "--json").stdout)
    return [card for card in cards if card["state"] == "live"]


def _two_live(redis_url: str, boss: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    """Wait until both workers of ``boss`` are on the roster; returns their cards."""
    cards = wait_until(
        lambda: len(live_cards(redis_url)) == 2 and live_cards(redis_url),
        60,
        0.2,
        message="two live workers",
    )
    assert {card["pid"] for card in cards} == children(boss.pid)
    return cards


def _busy(
    app: App, r: redis.Redis, redis_url: str, log: Path, started: list[Any], tasks: int
) -> tuple[subprocess.Popen[bytes], list[dict[str, Any]], Any]:
    """Two worker processes of one slot each, under a supervisor, running gated tasks
    (``tasks`` of them, in a group) until the test opens the gate; returns the
    supervisor, its workers' cards and the group's handle once both slots are busy (or
    the one task runs)."""
    started.append(boss := supervisor(redis_url, log))
    cards = _two_live(redis_url, boss)
    gated = remote_actor(app, "gated")
    handle = app.submit(Group(*(gated.message() for _ in range(tasks))))
    # One slot per process: two bodies at once means both processes run one.
    busy = min(tasks, 2)
    wait_until(lambda: runs(r, "gated") == busy, 30, message=f"{busy} bodies running")
    return boss, cards, handle


def test_each_worker_process_runs_tasks_under_its_own_name(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path, started: list[Any]
) -> None:
    boss, cards, handle = _busy(app, r, redis_url, tmp_path / "boss.log", started, 6)
    assert len({card["consumer"] for card in cards}) == 2
    assert boss.pid not in {card["pid"] for card in cards}  # it runs no worker itself
    r.lpush("gate", *range(6))
    assert handle.result(timeout=30) == ["through"] * 6
    ran_on = {e.event.worker for e in handle.history() if isinstance(e.event, TaskStarted)}
    assert ran_on == {card["consumer"] for card in cards}
    boss.send_signal(signal.SIGTERM)
    assert boss.wait(30) == 0


@pytest.mark.once
def test_a_killed_worker_process_is_restarted_and_its_work_done(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path, started: list[Any]
) -> None:
    log = tmp_path / "supervisor.log"
    boss, cards, handle = _busy(app, r, redis_url, log, started, 6)
    victim = cards[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: "worker_process_exited" in log.read_text(), 30, message="the exit")
    exited = next(line for line in log.read_text().splitlines() if "process_exited" in line)
    assert "signal=SIGKILL" in exited and f"pid={victim}" in exited, exited
    # A new worker in its place, under a new consumer name; the other one untouched.
    wait_until(
        lambda: len(children(boss.pid)) == 2 and victim not in children(boss.pid),
        30,
        message="a worker started in the killed one's place",
    )
    assert cards[1]["pid"] in children(boss.pid)
    replacement = (children(boss.pid) - {cards[1]["pid"]}).pop()
    wait_until(
        lambda: replacement in {card["pid"] for card in live_cards(redis_url)},
        60,
        0.2,
        message="the new worker on the roster",
    )
    # A probe of the host's workers counts the live ones, not the one that died.
    probe = cli(redis_url, "health", "--worker", socket.gethostname()).stdout
    assert f"{cards[0]['consumer']} gone (no such process here)" in probe, probe
    assert cards[1]["consumer"] in probe and probe.count(" beat ") == 2, probe
    r.lpush("gate", *range(8))  # the killed body runs again (taken over), so one spare
    assert handle.result(timeout=60) == ["through"] * 6
    boss.send_signal(signal.SIGTERM)
    assert boss.wait(30) == 0, log.read_text()


def _stopping(boss: subprocess.Popen[bytes], log: Path, sig: signal.Signals) -> None:
    """Send ``sig`` to the supervisor: it stops gracefully, waiting for the task."""
    boss.send_signal(sig)
    wait_until(lambda: "supervisor_stopping" in log.read_text(), 10, message="the stop")
    assert boss.poll() is None


@pytest.mark.once
def test_sigterm_stops_every_worker_gracefully(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path, started: list[Any]
) -> None:
    log = tmp_path / "supervisor.log"
    boss, cards, handle = _busy(app, r, redis_url, log, started, 1)
    _stopping(boss, log, signal.SIGTERM)
    r.lpush("gate", 1)
    assert boss.wait(30) == 0, log.read_text()
    assert handle.result(timeout=5) == ["through"]  # finished, not cut
    assert all(gone(card["pid"]) for card in cards)
    assert _states(redis_url, cards) == {"stopped"}
    assert "worker_process_exited" not in log.read_text()  # a stop is not restarted


@pytest.mark.once
def test_a_second_sigint_kills_the_workers(
    app: App, r: redis.Redis, redis_url: str, tmp_path: Path, started: list[Any]
) -> None:
    log = tmp_path / "supervisor.log"
    boss, cards, _ = _busy(app, r, redis_url, log, started, 1)
    _stopping(boss, log, signal.SIGINT)  # the first SIGINT is a graceful stop
    boss.send_signal(signal.SIGINT)
    assert boss.wait(30) == 130, log.read_text()
    assert all(gone(card["pid"]) for card in cards)


@pytest.mark.once
def test_workers_stop_themselves_when_their_supervisor_is_killed(
    r: redis.Redis, redis_url: str, tmp_path: Path, started: list[Any]
) -> None:
    started.append(boss := supervisor(redis_url, tmp_path / "supervisor.log"))
    cards = _two_live(redis_url, boss)
    boss.kill()  # no chance to stop them: they notice, and stop gracefully
    boss.wait()
    wait_until(lambda: all(gone(card["pid"]) for card in cards), 30, message="both gone")
    assert _states(redis_url, cards) == {"stopped"}
    assert "supervisor_gone" in (tmp_path / "supervisor.log").read_text()


def test_a_worker_that_cannot_start_is_not_restarted(redis_url: str) -> None:
    done = cli(redis_url, "worker", "no_such_module:app", "--processes", "2", code=1)
    # Said by one worker at least (the other may be stopped before it got that far), once
    # each: neither is started again.
    assert 1 <= done.stderr.count("No module named 'no_such_module'") <= 2
    last = done.stderr.strip().splitlines()[-1]
    assert "worker_not_started" in last and "no_such_module:app" in last, done.stderr


def _parsed(*args: str) -> argparse.Namespace:
    return build_parser().parse_args(["worker", "mod:app", *args])


def test_each_worker_process_gets_the_command_with_one_process() -> None:
    args = _parsed("--processes", "3", "--shards", "0-2,5", "--metrics-port", "9100")
    assert processes_of(args) == 3
    commands = [child_command(args, i) for i in range(3)]
    parsed = [build_parser().parse_args(command[3:]) for command in commands]
    assert [p.processes for p in parsed] == [1, 1, 1]
    assert all(p.supervised and p.watch is None for p in parsed)
    assert [p.metrics_port for p in parsed] == [9100, 9101, 9102]  # one port each
    assert parsed[0].shards == [0, 1, 2, 5]
    assert (parsed[0].concurrency, parsed[0].grace, parsed[0].roles) == (
        args.concurrency,
        args.grace,
        args.roles,
    )
    assert processes_of(_parsed()) == (os.cpu_count() or 1)
    assert processes_of(embedded := _parsed("--embedded", "--watch", ".")) == 1
    assert build_parser().parse_args(child_command(embedded, 0)[3:]).embedded
    with pytest.raises(SystemExit, match=r"--embedded .* --processes 1 \(got 2\)"):
        processes_of(_parsed("--embedded", "--processes", "2"))


RESTARTS = """
import sys
from streamflow.cli.common import configure_logging
from streamflow.cli.supervisor import Supervisor

configure_logging("info")
failing = [sys.executable, "-c", "raise SystemExit(5)"]
# Runs longer than healthy_after_s, then dies of a signal.
dying = [sys.executable, "-c", "import os, time; time.sleep(0.4); os.kill(os.getpid(), 9)"]
supervisor = Supervisor([failing, dying], backoff_s=(0.05, 0.4), healthy_after_s=0.3)
sys.exit(supervisor.run())
"""


def test_restarts_wait_twice_as_long_each_time_until_a_worker_ran_long_enough(
    tmp_path: Path,
) -> None:
    log = tmp_path / "supervisor.log"
    boss = subprocess.Popen([sys.executable, "-c", RESTARTS], cwd=ROOT, stderr=log.open("wb"))
    try:

        def exits(index: int) -> list[str]:
            lines = log.read_text().splitlines()
            return [line for line in lines if "process_exited" in line and f"index={index}" in line]

        wait_until(lambda: len(exits(0)) >= 5 and len(exits(1)) >= 2, 30, message="restarts")
        delays = [float(line.split("restart_in_s=")[1].split()[0]) for line in exits(0)]
        assert delays[:5] == [0.05, 0.1, 0.2, 0.4, 0.4]  # doubling, up to the longest
        assert all("exit_code=5" in line for line in exits(0))
        # The one that ran long enough each time is restarted after the first wait.
        assert all("restart_in_s=0.05" in line for line in exits(1))
        assert all("signal=SIGKILL" in line for line in exits(1))
        boss.send_signal(signal.SIGTERM)
        assert boss.wait(30) == 0, log.read_text()
    finally:
        if boss.poll() is None:
            boss.kill()
            boss.wait()
