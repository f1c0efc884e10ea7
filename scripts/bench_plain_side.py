"""One system's side of ``scripts/bench_plain.py``: its worker module and its producer.

Runs in the system's own venv (streamflow in .venv, the peers in .venv-peers), chosen
by ``BENCH_PLAIN_SYSTEM``:

- ``streamflow``: ``App`` with one ``noop`` actor; the worker is ``streamflow worker``.
- ``dramatiq``: the Redis broker at its defaults; ``dramatiq-results`` adds the Results
  middleware (``store_results=True``) for reading results back.
- ``taskiq``: taskiq-redis's ``ListQueueBroker`` (LPUSH/BRPOP) with its
  ``RedisAsyncResultBackend``.

Every task body increments the Redis counter ``bench-plain:done``: completion is seen
the same way for every system. The producer (``python bench_plain_side.py --n N``)
talks to the runner on stdin/stdout: it sends a warm-up task and says ``warm``; on
``go`` it submits N tasks one call at a time, waits until the counter says they ran,
and prints one JSON line (W1); on ``go`` again it reads the N results one call at a
time and prints another (W1r); systems without results print none. The synchronous
producers then time N plain GETs of one small key (GET: a read's round-trip floor). The
asyncio clients (streamflow's, taskiq's) then run W1-async (W1a): on one event loop, N
more tasks submitted with at most 100 in flight, then every result awaited at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

SYSTEM = os.environ.get("BENCH_PLAIN_SYSTEM", "")
URL = os.environ.get("BENCH_PLAIN_URL", "")
COUNTER = "bench-plain:done"
FLOOR_KEY = "bench-plain:floor"
IN_FLIGHT = 100
"""W1-async: submits in flight at most."""
POLL_S = 0.005

if SYSTEM == "streamflow":
    import redis

    from streamflow import App

    app = App(URL)
    _counter = redis.Redis.from_url(URL)

    @app.actor
    def noop() -> int:
        _counter.incr(COUNTER)
        return 1

elif SYSTEM in ("dramatiq", "dramatiq-results"):
    import dramatiq
    import redis
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=URL)
    if SYSTEM == "dramatiq-results":
        from dramatiq.results import Results
        from dramatiq.results.backends import RedisBackend

        broker.add_middleware(Results(backend=RedisBackend(url=URL)))
    dramatiq.set_broker(broker)
    _counter = redis.Redis.from_url(URL)

    options = {"store_results": True} if SYSTEM == "dramatiq-results" else {}

    @dramatiq.actor(**options)
    def noop() -> int:
        _counter.incr(COUNTER)
        return 1

elif SYSTEM == "taskiq":
    import redis.asyncio as aredis
    from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

    broker = ListQueueBroker(URL).with_result_backend(RedisAsyncResultBackend(URL))
    _acounter = aredis.Redis.from_url(URL)

    @broker.task
    async def noop() -> int:
        await _acounter.incr(COUNTER)
        return 1


def _wait_for(read: Callable[[], int], n: int) -> int:
    """Poll the counter until it reaches ``n``; returns how many polls it took."""
    polls = 0
    while read() < n:
        polls += 1
        time.sleep(POLL_S)
    return polls + 1


def _phase(name: str, started: float, cpu: float, **extra: Any) -> None:
    figures = {"phase": name, "wall_s": time.perf_counter() - started}
    figures["producer_cpu_s"] = time.process_time() - cpu
    print(json.dumps({**figures, **extra}), flush=True)


def _await_go() -> None:
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected go")


def produce_sync(n: int, send: Callable[[], Any], read: Callable[[Any], Any] | None) -> None:
    import redis

    counter = redis.Redis.from_url(URL)
    warm = send()
    _wait_for(lambda: int(counter.get(COUNTER) or 0), 1)
    if read is not None:
        read(warm)
    counter.set(COUNTER, 0)
    print("warm", flush=True)
    _await_go()
    started, cpu = time.perf_counter(), time.process_time()
    sent = [send() for _ in range(n)]
    submitted = time.perf_counter() - started
    polls = _wait_for(lambda: int(counter.get(COUNTER) or 0), n)
    _phase("W1", started, cpu, submit_s=submitted, polls=polls)
    if read is None:
        return
    _await_go()
    started, cpu = time.perf_counter(), time.process_time()
    values = [read(item) for item in sent]
    assert values == [1] * n, values[:5]
    _phase("W1r", started, cpu, polls=0)
    # The floor of a read one call at a time: one redis-py GET of a small key, nothing
    # decoded, on this process's own client (what any system's read costs at least).
    _await_go()
    counter.set(FLOOR_KEY, b"x" * 100)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        counter.get(FLOOR_KEY)
    _phase("GET", started, cpu, polls=0)
    if os.environ.get("BENCH_PLAIN_ASYNC") == "1":
        _await_go()
        asyncio.run(w1_async(n, lambda: noop.send_async(), lambda h: h.result(timeout=60)))


async def w1_async(
    n: int, send: Callable[[], Awaitable[Any]], read: Callable[[Any], Awaitable[Any]]
) -> None:
    """W1-async: one event loop submits N tasks, at most ``IN_FLIGHT`` submits at a
    time, then awaits every result (all at once); the clock stops at the last."""
    in_flight = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> Any:
        async with in_flight:
            return await send()

    started, cpu = time.perf_counter(), time.process_time()
    sent = await asyncio.gather(*(one() for _ in range(n)))
    submitted = time.perf_counter() - started
    values = await asyncio.gather(*(read(item) for item in sent))
    assert values == [1] * n, values[:5]
    _phase("W1a", started, cpu, submit_s=submitted, polls=0)


async def produce_taskiq(n: int) -> None:
    import redis.asyncio as aredis

    counter = aredis.Redis.from_url(URL)

    async def count() -> int:
        return int(await counter.get(COUNTER) or 0)

    await broker.startup()
    warm = await noop.kiq()
    await warm.wait_result()
    await counter.set(COUNTER, 0)
    print("warm", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, _await_go)
    started, cpu = time.perf_counter(), time.process_time()
    sent = [await noop.kiq() for _ in range(n)]
    submitted = time.perf_counter() - started
    polls = 1
    while await count() < n:
        polls += 1
        await asyncio.sleep(POLL_S)
    _phase("W1", started, cpu, submit_s=submitted, polls=polls)
    await asyncio.get_running_loop().run_in_executor(None, _await_go)
    started, cpu = time.perf_counter(), time.process_time()
    values = [(await task.wait_result()).return_value for task in sent]
    assert values == [1] * n, values[:5]
    _phase("W1r", started, cpu, polls=0)
    if os.environ.get("BENCH_PLAIN_ASYNC") != "1":
        return
    await asyncio.get_running_loop().run_in_executor(None, _await_go)

    async def result_of(task: Any) -> Any:
        return (await task.wait_result(timeout=60)).return_value

    await w1_async(n, noop.kiq, result_of)
    await broker.shutdown()


def main() -> None:
    n = int(sys.argv[sys.argv.index("--n") + 1])
    if SYSTEM == "streamflow":
        produce_sync(n, noop.send, lambda handle: handle.result(timeout=60))
    elif SYSTEM == "dramatiq":
        produce_sync(n, noop.send, None)
    elif SYSTEM == "dramatiq-results":
        produce_sync(n, noop.send, lambda m: m.get_result(block=True, timeout=60_000))
    elif SYSTEM == "taskiq":
        asyncio.run(produce_taskiq(n))
    else:
        raise SystemExit(f"unknown BENCH_PLAIN_SYSTEM {SYSTEM!r}")


if __name__ == "__main__":
    main()
