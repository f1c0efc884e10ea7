"""``streamflow schedules list|pause|resume|delete|trigger``: the schedules workers have
registered, and what an operator does to them (for every worker at once)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json

from streamflow.cli.common import connect
from streamflow.model.schedules import tick_workflow_id
from streamflow.store import schedules


def cmd_schedules(args: argparse.Namespace) -> int:
    app = connect(args)
    client, keys = app.client, app.keys
    if args.action == "list":
        states = [schedules.read(client, keys, n) for n in schedules.names(client, keys)]
        found = [state for state in states if state is not None]
        if args.json:
            print(json.dumps([dataclasses.asdict(state) for state in found]))
        elif not found:
            print("no schedule registered (a worker registers its App's schedules)")
        else:
            for state in found:
                print(_line(state))
        return 0
    if args.name is None:
        raise ValueError(f"streamflow schedules {args.action} needs a schedule's name")
    if args.action == "trigger":
        tick = schedules.trigger(client, keys, args.name)
        print(f"triggered {args.name}: workflow {tick_workflow_id(args.name, tick, app.shards)}")
    elif args.action == "delete":
        schedules.delete(client, keys, args.name)
        print(f"deleted {args.name}")
    else:
        schedules.set_paused(client, keys, args.name, args.action == "pause")
        print(f"{args.action}d {args.name}")
    return 0


def _line(state: schedules.ScheduleState) -> str:
    spec = state.spec
    last = "never run"
    if state.last_workflow_id and state.last_fired_ms is not None:
        last = f"last {state.last_workflow_id} at {_when(state.last_fired_ms)}"
    counts = f"fired {state.fired}, skipped {state.skipped}, overlapped {state.overlapped}"
    paused = "  PAUSED" if state.paused else ""
    return (
        f"{spec.name}  '{spec.cron}' {spec.tz}  catch-up {spec.catch_up}, overlap "
        f"{spec.overlap}{paused}\n    {counts}; pending {state.pending}; {last}"
    )


def _when(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
