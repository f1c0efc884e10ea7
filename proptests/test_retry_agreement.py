"""The simulator and the engine on a real Redis make the same retry decisions: random
actor options (retries, backoff, ``throws``, ``retry_when``) and random failures (an
ordinary exception, one of ``throws``, a rate limit, an unencodable result) give the
same sequence of failed attempts, each retried (and how) or final, in both; the
engine's delays lie where the policy's jitter can put them, the simulator's at the top.
"""

from __future__ import annotations

import itertools
from typing import Any

import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from streamflow import App, RateLimitExceeded
from streamflow.model.events import TaskFailed
from streamflow.model.options import ActorOptions
from streamflow.model.retry import backoff_ms
from streamflow.runtime.context import current_task
from streamflow.testing import run

KINDS = ("plain", "throws", "rate", "unencodable")
_names = itertools.count()


class Planned(Exception):
    """An ordinary failure."""


def _body(plan: list[str]) -> Any:
    def body() -> Any:
        task = current_task()
        assert task is not None
        kind = plan[task.attempt - 1] if task.attempt <= len(plan) else "ok"
        if kind == "plain":
            raise Planned(f"attempt {task.attempt}")
        if kind == "throws":
            raise KeyError("thrown")
        if kind == "rate":
            raise RateLimitExceeded("partner", 1)
        if kind == "unencodable":
            return object()
        return "done"

    return body


def _decisions(history: list[Any]) -> list[tuple[int, str, bool, bool]]:
    return [
        (e.event.attempt, e.event.error["type"], e.event.retry_delay_ms is None, e.event.later)
        for e in history
        if isinstance(e.event, TaskFailed)
    ]


def test_the_simulator_and_the_engine_retry_alike(r: redis.Redis, redis_url: str) -> None:
    app = App(redis_url)
    with app.worker(concurrency=2, queues=["default"]):

        @given(
            plan=st.lists(st.sampled_from(KINDS), max_size=4),
            max_retries=st.integers(0, 3),
            min_backoff_ms=st.integers(1, 4),
            spread=st.integers(0, 8),
            retry_when=st.none() | st.integers(0, 3),
        )
        @settings(deadline=None)
        def agree(
            plan: list[str],
            max_retries: int,
            min_backoff_ms: int,
            spread: int,
            retry_when: int | None,
        ) -> None:
            actor = app.actor(
                _body(plan),
                actor_name=f"policy_{next(_names)}",
                max_retries=max_retries,
                min_backoff=min_backoff_ms / 1000,
                max_backoff=(min_backoff_ms + spread) / 1000,
                throws=(KeyError,),
                retry_when=None if retry_when is None else (lambda n, exc: n < retry_when),
            )
            handle = actor.send()
            handle.wait(timeout=60)
            engine = handle.history()
            simulated = run(actor.message(), actors=[actor]).history
            assert _decisions(engine) == _decisions(simulated)
            options = ActorOptions(
                max_retries=max_retries,
                min_backoff_ms=min_backoff_ms,
                max_backoff_ms=min_backoff_ms + spread,
            )
            failed = [
                [e.event for e in history if isinstance(e.event, TaskFailed)]
                for history in (engine, simulated)
            ]
            for mine, theirs in zip(*failed, strict=True):
                if mine.retry_delay_ms is None:
                    continue
                if mine.error["type"] == "RateLimitExceeded":
                    low, high = min_backoff_ms // 2, int(min_backoff_ms * 1.5)
                else:
                    low = backoff_ms(mine.attempt, options, 0.0)
                    high = backoff_ms(mine.attempt, options, 1.0)
                assert low <= mine.retry_delay_ms <= high
                assert theirs.retry_delay_ms == high

        agree()
    app.close()
